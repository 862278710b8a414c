/* decode_xml: an XML DM message straight to the model, without Nodes.
 *
 * xml.decode's fast path.  A reader over the bytes reads the common messages
 * -- the strict subset of XML the XML reader's quick reader takes
 * (_xml_speedups.c), narrowed further -- into a Tree (_message_tree.h), and
 * map_tree maps it; Python objects are made only for what the model keeps.
 * It reads: ASCII only; no CR or other control but tab and LF; at most one of
 * three exact XML declarations; a root <SyncML> and below it only the
 * elements map_tree knows (element_names), each with no attribute but one
 * xmlns whose value is "syncml:" and letters, digits and dots (any case: a
 * URI the XML reader accepts, and whose key map_tree does not read), or
 * empty; text with the five predefined entity references and no "]]>"; text
 * only in elements without children (whitespace elsewhere); nesting and
 * element count within the caller's limits, counted as the XML reader's
 * builder counts them.  Anything else, or a message map_tree does not map,
 * answers None before any unbounded work, and the caller reads the document
 * with the XML reader and maps its Node tree, answering (or raising) exactly
 * as always.  Every document read to the end is one the XML reader accepts
 * and reads to the same tree (names, nesting, text).
 *
 * Included by _wbxml_speedups.c after _model_mapping.h.
 */
#ifndef DMGW_XML_TREE_H
#define DMGW_XML_TREE_H

#define XT_MAX_DEPTH 256    /* the XML reader's HARD_MAX_DEPTH */
#define XT_NAME_MAX 16      /* longer than every known name */

/* codes of the known names by length: xt_by_len[len] lists them, 0-ended */
static signed char xt_by_len[XT_NAME_MAX + 1][E_COUNT];

/* what each byte may be */
#define XT_NAME 1       /* [A-Za-z0-9._-] */
#define XT_SPACE 2      /* space, tab, LF */
#define XT_TEXT 4       /* text as it is: tab, LF, ASCII from space, but '&', '<', ']' */
#define XT_URI 8        /* in an xmlns value: [A-Za-z0-9.] */
static unsigned char xt_class[256];

#define XT_IS(c, class) (xt_class[(unsigned char)(c)] & (class))

static void
xt_setup(void)
{
    int used[XT_NAME_MAX + 1] = {0};
    for (int code = 1; code < E_COUNT; code++) {
        size_t len = strlen(element_names[code]);
        if (len <= XT_NAME_MAX) {
            xt_by_len[len][used[len]++] = (signed char)code;
        }
    }
    for (int c = 0; c < 256; c++) {
        int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        unsigned char k = 0;
        if (alnum || c == '_' || c == '.' || c == '-') {
            k |= XT_NAME;
        }
        if (c == ' ' || c == '\t' || c == '\n') {
            k |= XT_SPACE;
        }
        if (((c >= 0x20 && c < 0x80) || c == '\t' || c == '\n') && c != '&' && c != '<' && c != ']') {
            k |= XT_TEXT;
        }
        if (alnum || c == '.') {
            k |= XT_URI;
        }
        xt_class[c] = k;
    }
}

/* the code of the known name s[0..len), 0 for any other */
static int
xt_code(const char *s, size_t len)
{
    if (len > XT_NAME_MAX) {
        return 0;
    }
    for (const signed char *code = xt_by_len[len]; *code; code++) {
        const char *known = element_names[(int)*code];
        if (known[0] == s[0] && memcmp(known, s, len) == 0) {
            return *code;
        }
    }
    return 0;
}

static const char *
xt_spaces(const char *p, const char *end)
{
    while (p < end && XT_IS(*p, XT_SPACE)) {
        p++;
    }
    return p;
}

/* an xmlns value the XML reader accepts as a URI: "syncml:" (any case) then
 * [A-Za-z0-9.]*, or empty */
static int
xt_uri_ok(const char *uri, size_t len)
{
    if (len == 0) {
        return 1;
    }
    if (len < 7) {
        return 0;
    }
    static const char scheme[] = "syncml:";
    for (size_t i = 0; i < 7; i++) {
        if ((uri[i] | (i < 6 ? 0x20 : 0)) != scheme[i]) {
            return 0;
        }
    }
    for (size_t i = 7; i < len; i++) {
        if (!XT_IS(uri[i], XT_URI)) {
            return 0;
        }
    }
    return 1;
}

static int
xt_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!XT_IS(s[i], XT_SPACE)) {
            return 0;
        }
    }
    return 1;
}

typedef struct {
    const char *name;
    size_t name_len;
    Py_ssize_t at;          /* its TNode */
} XtOpen;

/* Read document s[0..size) into t, its text into chars (size bytes: the text
 * is never longer than the document); 1: read to the end, 0: left. */
static int
xt_read(Tree *t, const char *s, size_t size, char *chars, Py_ssize_t depth_limit, Py_ssize_t room)
{
    static const char *const declarations[] = {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
        "<?xml version=\"1.0\"?>",
    };
    XtOpen open[XT_MAX_DEPTH];
    Py_ssize_t depth = 0;
    int seen_root = 0;
    const char *p = s, *end = s + size;
    size_t text_from = 0, text_len = 0;  /* the text since the last element event, in chars */

    for (size_t i = 0; i < sizeof(declarations) / sizeof(declarations[0]); i++) {
        size_t len = strlen(declarations[i]);
        if (size >= len && memcmp(s, declarations[i], len) == 0) {
            p += len;
            break;
        }
    }
    while (p < end) {
        if (depth == 0) {  /* before or after the root: whitespace only */
            if (XT_IS(*p, XT_SPACE)) {
                p++;
                continue;
            }
            if (*p != '<' || seen_root) {
                return 0;
            }
        }
        else if (*p != '<') {  /* text, its references replaced */
            while (p < end && *p != '<') {
                const char *run = p;
                while (p < end && XT_IS(*p, XT_TEXT)) {
                    p++;
                }
                if (p > run) {
                    memcpy(chars + text_len, run, (size_t)(p - run));
                    text_len += (size_t)(p - run);
                    continue;
                }
                if (*p == ']') {
                    if (end - p >= 3 && p[1] == ']' && p[2] == '>') {
                        return 0;
                    }
                    chars[text_len++] = *p++;
                    continue;
                }
                if (*p != '&') {  /* not ASCII, or a control */
                    return 0;
                }
                static const struct { const char *ref; char c; } refs[] = {
                    {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''},
                };
                size_t i = 0, len = 0;
                for (; i < sizeof(refs) / sizeof(refs[0]); i++) {
                    len = strlen(refs[i].ref);
                    if ((size_t)(end - p) >= len && memcmp(p, refs[i].ref, len) == 0) {
                        break;
                    }
                }
                if (i == sizeof(refs) / sizeof(refs[0])) {
                    return 0;
                }
                chars[text_len++] = refs[i].c;
                p += len;
            }
            continue;
        }
        p++;  /* '<' */
        if (p < end && *p == '/') {  /* an end tag: the open element's name, S?, '>' */
            if (depth == 0) {
                return 0;
            }
            XtOpen *top = &open[depth - 1];
            p++;
            if ((size_t)(end - p) < top->name_len || memcmp(p, top->name, top->name_len) != 0) {
                return 0;
            }
            p = xt_spaces(p + top->name_len, end);
            if (p >= end || *p != '>') {
                return 0;
            }
            p++;
        end_element:
            if (text_len > text_from) {
                TNode *node = &t->nodes[open[depth - 1].at];
                if (node->count > 0) {  /* after children: whitespace only */
                    if (!xt_blank(chars + text_from, text_len - text_from)) {
                        return 0;
                    }
                    text_len = text_from;
                }
                else {
                    node->chars = chars + text_from;
                    node->len = (Py_ssize_t)(text_len - text_from);
                    text_from = text_len;
                }
            }
            depth--;
            continue;
        }
        /* a start tag: a known name, S? (xmlns="URI" S?)?, '/'?, '>' */
        const char *name = p;
        while (p < end && XT_IS(*p, XT_NAME)) {
            p++;
        }
        size_t name_len = (size_t)(p - name);
        int code = xt_code(name, name_len);
        if (depth == 0 ? seen_root || name_len != 6 || memcmp(name, "SyncML", 6) != 0
                       : code == 0) {
            return 0;
        }
        if (p < end && XT_IS(*p, XT_SPACE)) {
            p = xt_spaces(p, end);
            if ((size_t)(end - p) >= 5 && memcmp(p, "xmlns", 5) == 0) {
                p = xt_spaces(p + 5, end);
                if (p >= end || *p != '=') {
                    return 0;
                }
                p = xt_spaces(p + 1, end);
                if (p >= end || (*p != '"' && *p != '\'')) {
                    return 0;
                }
                char quote = *p++;
                const char *uri = p;
                while (p < end && *p != quote) {
                    p++;
                }
                if (p >= end || !xt_uri_ok(uri, (size_t)(p - uri))) {
                    return 0;
                }
                p = xt_spaces(p + 1, end);
            }
        }
        int empty = 0;
        if (p < end && *p == '/') {
            empty = 1;
            p++;
        }
        if (p >= end || *p != '>') {
            return 0;
        }
        p++;
        /* the text before it: whitespace only (mixed content is the XML reader's to refuse) */
        if (text_len > text_from && !xt_blank(chars + text_from, text_len - text_from)) {
            return 0;
        }
        text_len = text_from;
        /* the limits, as the XML reader's builder counts them (the root uncounted) */
        if (depth == 0) {
            if (depth_limit < 1 || room == 0) {
                return 0;
            }
        }
        else if (depth + 1 > depth_limit || --room == 0) {
            return 0;
        }
        Py_ssize_t at = tree_add(t, code, depth ? open[depth - 1].at : -1);
        if (at < 0) {
            return 0;
        }
        open[depth].name = name;
        open[depth].name_len = name_len;
        open[depth].at = at;
        depth++;
        seen_root = 1;
        if (empty) {
            goto end_element;
        }
    }
    return depth == 0 && seen_root;
}

/* decode_xml(data, depth_limit, max_elements) -> the SyncML model of a
 * common XML message, or None: the XML reader and the mapping decide */
static PyObject *
decode_xml(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode_xml() takes 3 arguments");
        return NULL;
    }
    if (!M.ready || !PyBytes_CheckExact(args[0]) || !PyLong_CheckExact(args[1])
            || (args[2] != Py_None && !PyLong_CheckExact(args[2]))) {
        Py_RETURN_NONE;
    }
    Py_ssize_t depth_limit = PyLong_AsSsize_t(args[1]);
    Py_ssize_t room = args[2] == Py_None ? -1 : PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred()) {  /* out of range: the XML reader */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    char *chars = PyMem_Malloc(size ? (size_t)size : 1);
    if (chars == NULL) {
        return PyErr_NoMemory();
    }
    if (depth_limit > XT_MAX_DEPTH) {
        depth_limit = XT_MAX_DEPTH;
    }
    Tree tree;
    tree_init(&tree);
    PyObject *result = NULL;
    if (xt_read(&tree, PyBytes_AS_STRING(args[0]), (size_t)size, chars, depth_limit, room)) {
        result = map_tree(tree_root(&tree));
    }
    tree_free(&tree);
    PyMem_Free(chars);
    if (result == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return result;
}

#endif
