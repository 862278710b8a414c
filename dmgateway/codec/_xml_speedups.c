/* Optional C accelerator for the XML reader's building pass.
 *
 * The pure-Python builder (_build in dmgateway/codec/xml_reader.py) is the
 * reference.  This module runs the same parse with the system's libexpat --
 * the same expat release as pyexpat's (xml_reader.py uses it only then), the
 * same handlers set, the same settings, the data fed in pyexpat's 1 MiB
 * chunks -- but with C handlers for the start and end of an element and for
 * character data, and it builds the same Node objects: names and namespace
 * keys from the caller's _NAMES (or its _resolve), attributes from its
 * _attrs, the root from the Node class itself.
 *
 * Everything the pure builder raises for, or stops at, makes this one give up
 * at once (XML_StopParser) and answer None: not well-formed XML, an XML
 * version other than 1.x, any DTD declaration, a skipped entity, mixed text
 * and element content, nesting deeper than the limit, the element limit
 * reached, an encoding expat does not know itself (pyexpat asks Python's
 * codecs), an error of _resolve or _attrs, a failed allocation.  The caller
 * then reads the document with the pure builder, which answers (or raises)
 * exactly as always.  So this module only ever returns a tree the pure
 * builder returns too.
 *
 * Before expat, a quick reader (quick_read, below) tries the document: the
 * strict subset of XML that DM clients send (ASCII, plain names, default
 * namespaces only, no declarations or other markup) it reads itself, calling
 * the same handlers with what expat would hand them, at a fraction of expat's
 * cost (its tokenizer, hashing and accounting were over half of a message's
 * decoding); anything else it leaves before the end, and expat reads the
 * document from the start.
 *
 * Nesting is held in a fixed array: the limit is at most 256 (HARD_MAX_DEPTH),
 * checked before each push.  Text is gathered in one heap buffer, as
 * pyexpat's buffer_text does (a run of text between two element events
 * arrives whole).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <limits.h>
#include <string.h>
#include <expat.h>

#define HARD_MAX_DEPTH 256
#define CHUNK (1 << 20)  /* pyexpat's MAX_CHUNK_SIZE: Parse() feeds expat this much at a time */

#include "_node_layout.h"

/* The names of one document: expat name bytes -> the tuple _NAMES holds for
 * them, so that a name met again is not decoded and looked up again.  Only
 * tuples _NAMES holds are kept (nothing is ever removed from _NAMES), so what
 * is found here is what names.get(name) answers. */
#define NAME_SLOTS 64       /* a power of 2 */
#define NAME_ENTRIES 48     /* at most this many held: probes stay short */
#define NAME_BYTES 64       /* longer names are looked up each time */

typedef struct {
    PyObject *found;        /* strong; NULL: a free slot */
    size_t len;
    char bytes[NAME_BYTES];
} NameEntry;

typedef struct {
    XML_Parser parser;
    int bail;                 /* given up: the pure builder reads the document */
    NodeLayout layout;
    PyObject *node_cls, *names, *resolve, *attrs_fn, *root_keys, *default_ns, *declared;
    PyObject *intern;         /* attribute names: one str per name and document, as pyexpat's */
    PyObject *root;           /* owned */
    PyObject *stack[HARD_MAX_DEPTH + 1];  /* open elements, borrowed (held by root) */
    Py_ssize_t depth, depth_limit, room;
    char *text;               /* character data since the last element event */
    size_t text_len, text_cap;
    int held;                 /* entries of seen */
    NameEntry seen[NAME_SLOTS];
} Builder;

static size_t
name_slot(const char *s, size_t len)
{
    size_t h = 2166136261u;  /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    }
    return h & (NAME_SLOTS - 1);
}

/* The tuple names.get(name) or _resolve(name) answers (a new reference), or NULL */
static PyObject *
found_name(Builder *b, const char *name)
{
    size_t len = strlen(name), slot = 0;
    if (len < NAME_BYTES) {
        slot = name_slot(name, len);
        for (NameEntry *e = &b->seen[slot]; e->found != NULL;
                slot = (slot + 1) & (NAME_SLOTS - 1), e = &b->seen[slot]) {
            if (e->len == len && memcmp(e->bytes, name, len) == 0) {
                Py_INCREF(e->found);
                return e->found;
            }
        }
    }
    PyObject *key_name = PyUnicode_DecodeUTF8(name, (Py_ssize_t)len, "strict");
    if (key_name == NULL) {
        return NULL;
    }
    PyObject *found = PyDict_GetItemWithError(b->names, key_name);  /* borrowed */
    if (found != NULL) {
        Py_INCREF(found);
    }
    else if (!PyErr_Occurred()) {
        found = PyObject_CallOneArg(b->resolve, key_name);
        /* kept below only if _resolve held it in _NAMES */
        if (found != NULL && PyDict_GetItemWithError(b->names, key_name) != found) {
            if (PyErr_Occurred()) {
                Py_CLEAR(found);
            }
            Py_DECREF(key_name);
            return found;
        }
    }
    Py_DECREF(key_name);
    if (found != NULL && len < NAME_BYTES && b->held < NAME_ENTRIES) {
        NameEntry *e = &b->seen[slot];  /* the free slot the probe stopped at */
        Py_INCREF(found);
        e->found = found;
        e->len = len;
        memcpy(e->bytes, name, len);
        b->held++;
    }
    return found;
}

static void
give_up(Builder *b)
{
    if (!b->bail) {
        b->bail = 1;
        if (b->parser != NULL) {  /* NULL while the quick reader runs */
            XML_StopParser(b->parser, XML_FALSE);
        }
    }
    PyErr_Clear();
}

static int
blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            return 0;
        }
    }
    return 1;
}

/* The text gathered since the last element event, judged as the pure
 * builder's text handler and start handler judge it: the open element's text
 * if that element now ends without children; otherwise (a child starts, or
 * children came before) whitespace only, dropped -- other text is mixed
 * content, which the pure builder raises for. */
static void
flush_text(Builder *b, int at_end)
{
    size_t n = b->text_len;
    if (n == 0) {
        return;
    }
    b->text_len = 0;
    if (b->depth == 0) {  /* not reported by expat outside the root */
        give_up(b);
        return;
    }
    PyObject *node = b->stack[b->depth - 1];
    if (!at_end || PyList_GET_SIZE(SLOT(node, b->layout.children)) > 0) {
        if (!blank(b->text, n)) {
            give_up(b);
        }
        return;
    }
    PyObject *text = PyUnicode_DecodeUTF8(b->text, (Py_ssize_t)n, "strict");
    if (text == NULL) {
        give_up(b);
        return;
    }
    Py_SETREF(SLOT(node, b->layout.text), text);
}

static PyObject *
decoded(const char *s)
{
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "strict");
}

static PyObject *
interned(Builder *b, const char *s)
{
    PyObject *str = decoded(s);
    if (str == NULL) {
        return NULL;
    }
    if (b->intern == NULL && (b->intern = PyDict_New()) == NULL) {
        Py_DECREF(str);
        return NULL;
    }
    PyObject *held = PyDict_SetDefault(b->intern, str, str);  /* borrowed */
    Py_XINCREF(held);
    Py_DECREF(str);
    return held;
}

/* _attrs of pyexpat's ordered attribute list, or None without attributes */
static PyObject *
attributes(Builder *b, const XML_Char **atts)
{
    if (atts[0] == NULL) {
        Py_RETURN_NONE;
    }
    Py_ssize_t count = 0;
    while (atts[count] != NULL) {
        count += 2;
    }
    PyObject *list = PyList_New(count);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i += 2) {
        PyObject *name = interned(b, atts[i]);
        if (name == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, name);
        PyObject *value = decoded(atts[i + 1]);
        if (value == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i + 1, value);
    }
    PyObject *plain = PyObject_CallOneArg(b->attrs_fn, list);
    Py_DECREF(list);
    return plain;
}

static void XMLCALL
on_start(void *data, const XML_Char *name, const XML_Char **atts)
{
    Builder *b = data;
    if (b->bail) {
        return;
    }
    flush_text(b, 0);
    if (b->bail) {
        return;
    }
    PyObject *found = found_name(b, name);  /* names.get(name) or _resolve(name) */
    if (found == NULL) {
        give_up(b);
        return;
    }
    if (!PyTuple_CheckExact(found) || PyTuple_GET_SIZE(found) != 2) {
        Py_DECREF(found);
        give_up(b);
        return;
    }
    PyObject *local = PyTuple_GET_ITEM(found, 0), *key = PyTuple_GET_ITEM(found, 1);
    int has_key = PyObject_IsTrue(key);
    if (has_key < 0) {
        Py_DECREF(found);
        give_up(b);
        return;
    }

    if (b->depth == 0) {
        /* Node(local, key or ROOT_KEYS.get(local, NS_SYNCML), None, None, attrs) */
        PyObject *ns = key;
        if (b->root != NULL) {  /* a second root: expat refuses it first */
            Py_DECREF(found);
            give_up(b);
            return;
        }
        if (!has_key) {
            ns = PyDict_GetItemWithError(b->root_keys, local);
            if (ns == NULL) {
                if (PyErr_Occurred()) {
                    Py_DECREF(found);
                    give_up(b);
                    return;
                }
                ns = b->default_ns;
            }
        }
        Py_INCREF(ns);
        PyObject *attrs = attributes(b, atts);
        PyObject *node = NULL;
        if (attrs != NULL) {
            node = PyObject_CallFunctionObjArgs(b->node_cls, local, ns, Py_None, Py_None, attrs,
                                                NULL);
            Py_DECREF(attrs);
        }
        Py_DECREF(ns);
        Py_DECREF(found);
        if (node == NULL || !Py_IS_TYPE(node, b->layout.type)
                || !PyList_CheckExact(SLOT(node, b->layout.children))) {
            Py_XDECREF(node);
            give_up(b);
            return;
        }
        b->root = node;
        b->stack[0] = node;
        b->depth = 1;
        if (b->depth_limit < 1 || b->room == 0) {  /* a finding, or past the limit */
            give_up(b);
        }
        return;
    }

    PyObject *parent = b->stack[b->depth - 1];
    PyObject *attrs = attributes(b, atts);
    if (attrs == NULL) {
        Py_DECREF(found);
        give_up(b);
        return;
    }
    PyObject *children = PyList_New(0);
    PyObject *node = children ? b->layout.type->tp_alloc(b->layout.type, 0) : NULL;
    if (node == NULL) {
        Py_XDECREF(children);
        Py_DECREF(attrs);
        Py_DECREF(found);
        give_up(b);
        return;
    }
    PyObject *ns = has_key ? key : SLOT(parent, b->layout.ns);
    Py_INCREF(local);
    SLOT(node, b->layout.name) = local;
    Py_INCREF(ns);
    SLOT(node, b->layout.ns) = ns;
    SLOT(node, b->layout.children) = children;
    Py_INCREF(Py_None);
    SLOT(node, b->layout.text) = Py_None;
    SLOT(node, b->layout.attrs) = attrs;
    Py_DECREF(found);
    int appended = PyList_Append(SLOT(parent, b->layout.children), node);
    Py_DECREF(node);  /* held by its parent */
    if (appended < 0 || b->depth + 1 > b->depth_limit) {
        give_up(b);
        return;
    }
    b->stack[b->depth++] = node;
    b->room -= 1;
    if (b->room == 0) {
        give_up(b);
    }
}

static void XMLCALL
on_end(void *data, const XML_Char *name)
{
    Builder *b = data;
    (void)name;
    if (b->bail) {
        return;
    }
    flush_text(b, 1);
    if (b->bail) {
        return;
    }
    if (b->depth == 0) {
        give_up(b);
        return;
    }
    b->depth--;
}

static void XMLCALL
on_text(void *data, const XML_Char *s, int len)
{
    Builder *b = data;
    if (b->bail || len <= 0) {
        return;
    }
    if ((size_t)len > b->text_cap - b->text_len) {
        size_t need = b->text_len + (size_t)len;
        size_t cap = b->text_cap ? b->text_cap : 256;
        while (cap < need) {
            if (cap > ((size_t)PY_SSIZE_T_MAX) / 2) {
                give_up(b);
                return;
            }
            cap *= 2;
        }
        char *text = PyMem_Realloc(b->text, cap);
        if (text == NULL) {
            give_up(b);
            return;
        }
        b->text = text;
        b->text_cap = cap;
    }
    memcpy(b->text + b->text_len, s, (size_t)len);
    b->text_len += (size_t)len;
}

static void XMLCALL
on_xml_decl(void *data, const XML_Char *version, const XML_Char *encoding, int standalone)
{
    Builder *b = data;
    (void)encoding;
    (void)standalone;
    if (b->bail) {
        return;
    }
    if (version == NULL || strncmp(version, "1.", 2) != 0) {
        give_up(b);
    }
}

static void XMLCALL
on_namespace(void *data, const XML_Char *prefix, const XML_Char *uri)
{
    Builder *b = data;
    if (b->bail) {
        return;
    }
    flush_text(b, 0);  /* pyexpat hands buffered text over before any handler */
    if (b->bail) {
        return;
    }
    /* declared[prefix] = uri, None for a null pointer */
    PyObject *key = prefix ? decoded(prefix) : Py_NewRef(Py_None);
    PyObject *value = uri ? decoded(uri) : Py_NewRef(Py_None);
    if (key == NULL || value == NULL || PyDict_SetItem(b->declared, key, value) < 0) {
        give_up(b);
    }
    Py_XDECREF(key);
    Py_XDECREF(value);
}

/* DTD declarations and skipped entities: the pure builder raises */
static void XMLCALL
on_entity_decl(void *data, const XML_Char *a, int b_, const XML_Char *c, int d,
               const XML_Char *e, const XML_Char *f, const XML_Char *g, const XML_Char *h)
{
    (void)a; (void)b_; (void)c; (void)d; (void)e; (void)f; (void)g; (void)h;
    give_up(data);
}

static void XMLCALL
on_unparsed_entity_decl(void *data, const XML_Char *a, const XML_Char *b_, const XML_Char *c,
                        const XML_Char *d, const XML_Char *e)
{
    (void)a; (void)b_; (void)c; (void)d; (void)e;
    give_up(data);
}

static void XMLCALL
on_element_decl(void *data, const XML_Char *name, XML_Content *model)
{
    Builder *b = data;
    (void)name;
    XML_FreeContentModel(b->parser, model);
    give_up(b);
}

static void XMLCALL
on_attlist_decl(void *data, const XML_Char *a, const XML_Char *b_, const XML_Char *c,
                const XML_Char *d, int e)
{
    (void)a; (void)b_; (void)c; (void)d; (void)e;
    give_up(data);
}

static void XMLCALL
on_notation_decl(void *data, const XML_Char *a, const XML_Char *b_, const XML_Char *c,
                 const XML_Char *d)
{
    (void)a; (void)b_; (void)c; (void)d;
    give_up(data);
}

static void XMLCALL
on_skipped_entity(void *data, const XML_Char *name, int is_parameter_entity)
{
    (void)name;
    (void)is_parameter_entity;
    give_up(data);
}

/* The root the builder holds (ok: the document was read to its end), or None;
 * frees what the builder holds */
static PyObject *
finish(Builder *b, int ok)
{
    PyMem_Free(b->text);
    Py_XDECREF(b->intern);
    for (int i = 0; i < NAME_SLOTS; i++) {
        Py_XDECREF(b->seen[i].found);
    }
    if (!ok || b->bail || b->root == NULL || b->depth != 0 || b->text_len != 0) {
        PyErr_Clear();
        Py_XDECREF(b->root);
        Py_RETURN_NONE;
    }
    return b->root;
}

/* The quick reader: the common documents without expat.
 *
 * It reads a strict subset of XML -- ASCII only; no CR or other control
 * character but tab and LF; names of [A-Za-z_][A-Za-z0-9._-]* not starting
 * with "xml"; no attribute but one "xmlns" per element, its value plain
 * (no reference, whitespace other than space, '}' or URI of the W3C); text
 * with the five predefined entity references and no "]]>"; no comment,
 * processing instruction, CDATA or DOCTYPE; at most one of three exact XML
 * declarations -- and calls the handlers above with what expat, parsing
 * with namespaces, would hand them for such a document, in the same order:
 * on_namespace then on_start for an element declaring xmlns, on_text for
 * each run of text (the references replaced), on_end.  Everything else,
 * or anything it is unsure of, it leaves (QUICK_LEFT) before the end of the
 * document, and expat reads the document from the start.  Every document it
 * reads to the end is well-formed for expat and reads the same. */
#define QUICK_DONE 1
#define QUICK_LEFT 0
#define QUICK_NAME 256   /* longer names: expat */
#define QUICK_EXPANDED 1024

typedef struct {
    const char *name, *uri;
    size_t name_len, uri_len;
} QuickOpen;

static const char *const quick_declarations[] = {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
    "<?xml version=\"1.0\"?>",
};

static int
quick_name_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int
quick_name_char(unsigned char c)
{
    return quick_name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static int
quick_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* the length of the name at s (0: not one the quick reader takes) */
static size_t
quick_name(const char *s, const char *end)
{
    const char *p = s;
    if (p >= end || !quick_name_start((unsigned char)*p)) {
        return 0;
    }
    while (p < end && quick_name_char((unsigned char)*p)) {
        p++;
    }
    size_t n = (size_t)(p - s);
    if (n > QUICK_NAME || (n >= 3 && (s[0] | 0x20) == 'x' && (s[1] | 0x20) == 'm'
                                    && (s[2] | 0x20) == 'l')) {
        return 0;
    }
    return n;
}

/* the text from s to '<' (or end) handed to on_text; NULL to leave */
static const char *
quick_text(Builder *b, const char *s, const char *end)
{
    const char *run = s, *p = s;
    while (p < end && *p != '<') {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80 || (c < 0x20 && c != '\t' && c != '\n')) {
            return NULL;
        }
        if (c == '>' && p - s >= 2 && p[-1] == ']' && p[-2] == ']') {
            return NULL;
        }
        if (c != '&') {
            p++;
            continue;
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
            return NULL;
        }
        if (p > run) {
            on_text(b, run, (int)(p - run));
        }
        on_text(b, &refs[i].c, 1);
        p += len;
        run = p;
    }
    if (p > run) {
        on_text(b, run, (int)(p - run));
    }
    return p;
}

static int
quick_read(Builder *b, const char *s, size_t size)
{
    const char *p = s, *end = s + size;
    QuickOpen open[HARD_MAX_DEPTH + 1];
    size_t depth = 0;
    int seen_root = 0;
    char expanded[QUICK_EXPANDED];
    const XML_Char *no_attributes[1] = {NULL};

    for (size_t i = 0; i < sizeof(quick_declarations) / sizeof(quick_declarations[0]); i++) {
        size_t len = strlen(quick_declarations[i]);
        if (size >= len && memcmp(s, quick_declarations[i], len) == 0) {
            p += len;
            break;
        }
    }
    while (p < end) {
        if (b->bail) {
            return QUICK_DONE;  /* the handlers gave up: None whoever reads on */
        }
        if (depth == 0) {  /* before or after the root: whitespace only */
            if (quick_space((unsigned char)*p)) {
                p++;
                continue;
            }
            if (*p != '<' || seen_root) {
                return QUICK_LEFT;
            }
        }
        else if (*p != '<') {
            p = quick_text(b, p, end);
            if (p == NULL) {
                return QUICK_LEFT;
            }
            continue;
        }
        p++;  /* '<' */
        if (p < end && *p == '/') {  /* an end tag: the open element's name, S?, '>' */
            if (depth == 0) {  /* before the root: no element is open */
                return QUICK_LEFT;
            }
            QuickOpen *top = &open[depth - 1];
            p++;
            if ((size_t)(end - p) < top->name_len || memcmp(p, top->name, top->name_len) != 0) {
                return QUICK_LEFT;
            }
            p += top->name_len;
            while (p < end && quick_space((unsigned char)*p)) {
                p++;
            }
            if (p >= end || *p != '>') {
                return QUICK_LEFT;
            }
            p++;
            on_end(b, NULL);
            depth--;
            continue;
        }
        size_t name_len = quick_name(p, end);
        if (name_len == 0 || depth >= HARD_MAX_DEPTH) {
            return QUICK_LEFT;
        }
        QuickOpen *top = &open[depth];
        top->name = p;
        top->name_len = name_len;
        top->uri = depth ? open[depth - 1].uri : "";
        top->uri_len = depth ? open[depth - 1].uri_len : 0;
        p += name_len;
        const char *uri = NULL;
        size_t uri_len = 0;
        if (p < end && quick_space((unsigned char)*p)) {
            while (p < end && quick_space((unsigned char)*p)) {
                p++;
            }
            if ((size_t)(end - p) >= 5 && memcmp(p, "xmlns", 5) == 0) {
                p += 5;
                while (p < end && quick_space((unsigned char)*p)) {
                    p++;
                }
                if (p >= end || *p != '=') {
                    return QUICK_LEFT;
                }
                p++;
                while (p < end && quick_space((unsigned char)*p)) {
                    p++;
                }
                if (p >= end || (*p != '"' && *p != '\'')) {
                    return QUICK_LEFT;
                }
                char quote = *p++;
                uri = p;
                while (p < end && *p != quote) {
                    unsigned char c = (unsigned char)*p;
                    if (c < 0x20 || c >= 0x80 || c == '&' || c == '<' || c == '}') {
                        return QUICK_LEFT;
                    }
                    p++;
                }
                if (p >= end) {
                    return QUICK_LEFT;
                }
                uri_len = (size_t)(p - uri);
                p++;
                if (uri_len >= 18 && memcmp(uri, "http://www.w3.org/", 18) == 0) {
                    return QUICK_LEFT;  /* the reserved namespaces: expat's answer */
                }
                while (p < end && quick_space((unsigned char)*p)) {
                    p++;
                }
            }
        }
        int empty = 0;
        if (p < end && *p == '/') {
            empty = 1;
            p++;
        }
        if (p >= end || *p != '>') {
            return QUICK_LEFT;
        }
        p++;
        if (uri != NULL) {
            top->uri = uri;
            top->uri_len = uri_len;
            /* expat hands the declaration over first, its URI as the document
             * spells it; a null pointer for xmlns="" (no default namespace) */
            char value[QUICK_EXPANDED];
            if (uri_len >= sizeof(value)) {
                return QUICK_LEFT;
            }
            memcpy(value, uri, uri_len);
            value[uri_len] = '\0';
            on_namespace(b, NULL, uri_len ? value : NULL);
            if (b->bail) {
                return QUICK_DONE;
            }
        }
        /* the name as expat's namespace processing hands it over: "URI}local" or "local" */
        size_t at = 0;
        if (top->uri_len + 1 + name_len + 1 > sizeof(expanded)) {
            return QUICK_LEFT;
        }
        if (top->uri_len > 0) {
            memcpy(expanded, top->uri, top->uri_len);
            at = top->uri_len;
            expanded[at++] = '}';
        }
        memcpy(expanded + at, top->name, name_len);
        expanded[at + name_len] = '\0';
        on_start(b, expanded, no_attributes);
        seen_root = 1;
        depth++;
        if (empty && !b->bail) {
            on_end(b, NULL);
            depth--;
        }
    }
    if (depth != 0 || !seen_root) {
        return QUICK_LEFT;
    }
    return QUICK_DONE;
}

/* build(data, encoding, depth_limit, max_elements, declared, Node, names,
 *       resolve, attrs, root_keys, default_ns) -> root Node, or None: the pure
 * builder reads the document */
static PyObject *
build(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "build() takes 11 arguments");
        return NULL;
    }
    PyObject *data = args[0], *encoding = args[1];
    if (!PyBytes_CheckExact(data) || (encoding != Py_None && !PyUnicode_CheckExact(encoding))
            || !PyLong_CheckExact(args[2]) || (args[3] != Py_None && !PyLong_CheckExact(args[3]))
            || !PyDict_CheckExact(args[4]) || !PyDict_CheckExact(args[6])
            || !PyDict_CheckExact(args[9])) {
        Py_RETURN_NONE;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (size > (INT_MAX - 64) / 3) {  /* pyexpat's buffer_size could not be set */
        Py_RETURN_NONE;
    }
    Builder b;
    memset(&b, 0, sizeof(b));
    if (node_layout(args[5], &b.layout) < 0) {
        Py_RETURN_NONE;
    }
    b.depth_limit = PyLong_AsSsize_t(args[2]);
    b.room = args[3] == Py_None ? -1 : PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred() || b.depth_limit > HARD_MAX_DEPTH) {  /* out of range: the pure path */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    const char *encoding_name = NULL;
    if (encoding != Py_None) {
        encoding_name = PyUnicode_AsUTF8(encoding);
        if (encoding_name == NULL || strlen(encoding_name) != (size_t)PyUnicode_GET_LENGTH(encoding)) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
    }
    b.declared = args[4];
    b.node_cls = args[5];
    b.names = args[6];
    b.resolve = args[7];
    b.attrs_fn = args[8];
    b.root_keys = args[9];
    b.default_ns = args[10];

    const char *s = PyBytes_AS_STRING(data);
    Py_ssize_t room = b.room;  /* the elements the quick reader counted are counted again */
    if (encoding_name == NULL || strcmp(encoding_name, "utf-8") == 0) {
        if (quick_read(&b, s, (size_t)size) == QUICK_DONE) {
            return finish(&b, 1);
        }
        /* left: expat reads the document from the start, into a fresh builder */
        PyDict_Clear(b.declared);
        Py_CLEAR(b.root);
        b.depth = 0;
        b.text_len = 0;
        b.room = room;
    }

    XML_Parser parser = XML_ParserCreateNS(encoding_name, '}');
    if (parser == NULL) {
        return PyErr_NoMemory();
    }
    b.parser = parser;
    XML_SetUserData(parser, &b);
    /* pyexpat's salt (expat would draw its own from the system's entropy) */
    XML_SetHashSalt(parser, (unsigned long)_Py_HashSecret.expat.hashsalt);
    XML_SetParamEntityParsing(parser, XML_PARAM_ENTITY_PARSING_NEVER);
    XML_SetXmlDeclHandler(parser, on_xml_decl);
    XML_SetStartNamespaceDeclHandler(parser, on_namespace);
    XML_SetEntityDeclHandler(parser, on_entity_decl);
    XML_SetUnparsedEntityDeclHandler(parser, on_unparsed_entity_decl);
    XML_SetElementDeclHandler(parser, on_element_decl);
    XML_SetAttlistDeclHandler(parser, on_attlist_decl);
    XML_SetNotationDeclHandler(parser, on_notation_decl);
    XML_SetElementHandler(parser, on_start, on_end);
    XML_SetCharacterDataHandler(parser, on_text);
    XML_SetSkippedEntityHandler(parser, on_skipped_entity);

    Py_ssize_t left = size;
    int ok = 1;
    while (ok && left > CHUNK) {
        ok = XML_Parse(parser, s, CHUNK, 0) == XML_STATUS_OK;
        s += CHUNK;
        left -= CHUNK;
    }
    if (ok) {
        ok = XML_Parse(parser, s, (int)left, 1) == XML_STATUS_OK;
    }
    XML_ParserFree(parser);
    b.parser = NULL;
    return finish(&b, ok);
}

static PyObject *
expat_version(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyUnicode_FromString(XML_ExpatVersion());
}

/* as pyexpat.features: [(name, value), ...] */
static PyObject *
expat_features(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    const XML_Feature *features = XML_GetFeatureList();
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    for (int i = 0; features[i].feature != XML_FEATURE_END; i++) {
        PyObject *item = Py_BuildValue("(sl)", features[i].name, features[i].value);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
    }
    return list;
}

static PyMethodDef methods[] = {
    {"build", (PyCFunction)(void (*)(void))build, METH_FASTCALL,
     "The node tree of an XML document as xml_reader._build reads it; None for anything else."},
    {"expat_version", expat_version, METH_NOARGS, "The linked libexpat's version string."},
    {"expat_features", expat_features, METH_NOARGS, "The linked libexpat's feature list."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_xml_speedups",
    "Optional C accelerator for dmgateway.codec.xml_reader (the pure builder is the reference).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__xml_speedups(void)
{
    return PyModule_Create(&module_def);
}
