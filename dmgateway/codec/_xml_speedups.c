/* Optional C accelerator for the XML reader's building pass.
 *
 * The pure-Python builder (_build in dmgateway/codec/xml_reader.py) is the
 * reference.  This module runs the same parse with the system's libexpat --
 * the same expat release as pyexpat's (xml_reader.py uses it only then), the
 * same handlers set, the same settings, the data fed in pyexpat's 1 MiB
 * chunks -- but with C handlers for the start and end of an element and for
 * character data, and it builds the same Node objects: names and namespace
 * keys from the caller's _NAMES (or its _resolve; the tuples found are kept
 * for the next documents, see find_name), attributes from its _attrs, every
 * node as the pure builder leaves it (children [], text None or a str).
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

#define QUICK_EXPANDED 1024  /* the quick reader's longest "URI}local" + 1 */

/* The names met before, process-wide: expat name bytes ("URI}local" or
 * "local") -> the (local, key) tuple the caller's _NAMES holds for them, so
 * that a name met again is neither decoded into a str, nor hashed, nor looked
 * up again.  Only tuples _NAMES holds are kept, and nothing is ever removed
 * from _NAMES or replaced in it, so what is found here is what names.get(name)
 * answers; the table describes one names dict, the last one handed over.
 * Bounded: a name is looked for in NAME_PROBES slots from its hash's, and a
 * name not found takes the first free one of them or else the first (names a
 * peer makes up push others out: they are looked up again, no more). */
#define NAME_SLOTS 512      /* a power of 2 */
#define NAME_PROBES 4
#define NAME_BYTES 64       /* longer names are looked up each time */

typedef struct {
    PyObject *found;        /* strong; NULL: a free slot */
    PyObject *local, *key;  /* found's items; key NULL where false (the parent's is inherited) */
    uint32_t hash, len;
    char bytes[NAME_BYTES];
} NameEntry;

static NameEntry known[NAME_SLOTS];
static PyObject *known_names;  /* strong: the names dict the entries come from */

/* What names.get(name) or _resolve(name) answered for one name */
typedef struct {
    PyObject *found;        /* a new reference */
    PyObject *local, *key;  /* borrowed from found; key NULL where false */
} Name;

#define FNV_BASIS 2166136261u
#define FNV_PRIME 16777619u

static uint32_t
fnv(uint32_t h, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
    }
    return h;
}

/* The hash of an expat name from the hash of its "URI}" (0 without one) and
 * that of its local part (after the last '}'): the quick reader hashes the
 * URI once where it is declared, and the local name as it reads it */
static uint32_t
name_hash(uint32_t prefix, uint32_t local)
{
    return (local ^ prefix) * FNV_PRIME;
}

static uint32_t
prefix_hash(const char *uri, size_t uri_len)
{
    return uri_len ? fnv(fnv(FNV_BASIS, uri, uri_len), "}", 1) : 0;
}

static void
use_names(PyObject *names)
{
    if (names == known_names) {
        return;
    }
    for (int i = 0; i < NAME_SLOTS; i++) {
        Py_CLEAR(known[i].found);
    }
    Py_INCREF(names);
    Py_XSETREF(known_names, names);
}

static int
same_name(const char *held, const char *uri, size_t uri_len, const char *local, size_t local_len)
{
    if (uri_len) {
        if (memcmp(held, uri, uri_len) != 0 || held[uri_len] != '}') {
            return 0;
        }
        held += uri_len + 1;
    }
    return memcmp(held, local, local_len) == 0;
}

/* Into *out, what names.get(name) or _resolve(name) answers for the expat
 * name uri + "}" + local (local alone where uri_len is 0, and then shorter
 * than QUICK_EXPANDED), of hash name_hash(...); -1 where that is not a
 * 2-tuple or an error is raised */
static int
find_name(PyObject *names, PyObject *resolve, uint32_t hash, const char *uri, size_t uri_len,
          const char *local, size_t local_len, Name *out)
{
    size_t len = uri_len ? uri_len + 1 + local_len : local_len;
    int held = len < NAME_BYTES && names == known_names;
    size_t slot = hash & (NAME_SLOTS - 1);
    for (int i = 0; held && i < NAME_PROBES; i++, slot = (slot + 1) & (NAME_SLOTS - 1)) {
        NameEntry *e = &known[slot];
        if (e->found == NULL) {
            break;
        }
        if (e->hash == hash && e->len == len && same_name(e->bytes, uri, uri_len, local, local_len)) {
            out->found = Py_NewRef(e->found);
            out->local = e->local;
            out->key = e->key;
            return 0;
        }
    }
    const char *name = local;
    char expanded[QUICK_EXPANDED];
    if (uri_len) {
        if (len >= sizeof(expanded)) {
            PyErr_SetString(PyExc_ValueError, "name too long");
            return -1;
        }
        memcpy(expanded, uri, uri_len);
        expanded[uri_len] = '}';
        memcpy(expanded + uri_len + 1, local, local_len);
        name = expanded;
    }
    PyObject *key_name = PyUnicode_DecodeUTF8(name, (Py_ssize_t)len, "strict");
    if (key_name == NULL) {
        return -1;
    }
    PyObject *found = PyDict_GetItemWithError(names, key_name);  /* borrowed */
    if (found != NULL) {
        Py_INCREF(found);
    }
    else if (!PyErr_Occurred()) {
        found = PyObject_CallOneArg(resolve, key_name);
        /* kept below only if _resolve held it in _NAMES */
        if (found != NULL && PyDict_GetItemWithError(names, key_name) != found) {
            held = 0;
            if (PyErr_Occurred()) {
                Py_CLEAR(found);
            }
        }
    }
    Py_DECREF(key_name);
    if (found == NULL) {
        return -1;
    }
    int true_key;
    if (!PyTuple_CheckExact(found) || PyTuple_GET_SIZE(found) != 2
            || (true_key = PyObject_IsTrue(PyTuple_GET_ITEM(found, 1))) < 0) {
        Py_DECREF(found);
        return -1;
    }
    out->found = found;
    out->local = PyTuple_GET_ITEM(found, 0);
    out->key = true_key ? PyTuple_GET_ITEM(found, 1) : NULL;
    if (held && names == known_names) {  /* (_resolve may have run a build of other names) */
        NameEntry *e = &known[hash & (NAME_SLOTS - 1)];
        for (int i = 0; i < NAME_PROBES; i++) {
            NameEntry *free = &known[(hash + i) & (NAME_SLOTS - 1)];
            if (free->found == NULL) {
                e = free;
                break;
            }
        }
        Py_XSETREF(e->found, Py_NewRef(found));
        e->local = out->local;
        e->key = out->key;
        e->hash = hash;
        e->len = (uint32_t)len;
        memcpy(e->bytes, name, len);
    }
    return 0;
}

typedef struct {
    XML_Parser parser;
    int bail;                 /* given up: the pure builder reads the document */
    int ascii;                /* the quick reader runs: text is ASCII */
    NodeLayout layout;
    PyObject *names, *resolve, *attrs_fn, *root_keys, *default_ns, *declared;
    PyObject *intern;         /* attribute names: one str per name and document, as pyexpat's */
    PyObject *root;           /* owned */
    PyObject *stack[HARD_MAX_DEPTH + 1];  /* open elements, borrowed (held by root) */
    Py_ssize_t depth, depth_limit, room;
    char *text;               /* character data since the last element event */
    size_t text_len, text_cap;
} Builder;

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
    PyObject *text;
    if (b->ascii && n > 1) {  /* what the decoder makes of ASCII, without its checks */
        text = PyUnicode_New((Py_ssize_t)n, 127);
        if (text != NULL) {
            memcpy(PyUnicode_1BYTE_DATA(text), b->text, n);
        }
    }
    else {  /* (one ASCII character: the decoder's shared str) */
        text = PyUnicode_DecodeUTF8(b->text, (Py_ssize_t)n, "strict");
    }
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

/* A Node as the pure builder makes it (children [], text None); steals attrs */
static PyObject *
new_node(const NodeLayout *layout, PyObject *name, PyObject *ns, PyObject *attrs)
{
    PyObject *children = PyList_New(0);
    PyObject *node = children ? layout->type->tp_alloc(layout->type, 0) : NULL;
    if (node == NULL) {
        Py_XDECREF(children);
        Py_DECREF(attrs);
        return NULL;
    }
    SLOT(node, layout->name) = Py_NewRef(name);
    SLOT(node, layout->ns) = Py_NewRef(ns);
    SLOT(node, layout->children) = children;
    SLOT(node, layout->text) = Py_NewRef(Py_None);
    SLOT(node, layout->attrs) = attrs;
    return node;
}

/* The start of an element named name (its reference is used up), after
 * the text before it is flushed */
static void
start_element(Builder *b, Name *name, const XML_Char **atts)
{
    PyObject *ns = name->key;
    if (b->depth == 0) {
        /* Node(local, key or ROOT_KEYS.get(local, NS_SYNCML), None, None, attrs) */
        if (b->root != NULL) {  /* a second root: expat refuses it first */
            Py_DECREF(name->found);
            give_up(b);
            return;
        }
        if (ns == NULL) {
            ns = PyDict_GetItemWithError(b->root_keys, name->local);
            if (ns == NULL) {
                if (PyErr_Occurred()) {
                    Py_DECREF(name->found);
                    give_up(b);
                    return;
                }
                ns = b->default_ns;
            }
        }
    }
    else if (ns == NULL) {
        ns = SLOT(b->stack[b->depth - 1], b->layout.ns);
    }
    Py_INCREF(ns);
    PyObject *attrs = attributes(b, atts);
    PyObject *node = attrs ? new_node(&b->layout, name->local, ns, attrs) : NULL;
    Py_DECREF(ns);
    Py_DECREF(name->found);
    if (node == NULL) {
        give_up(b);
        return;
    }
    if (b->depth == 0) {
        b->root = node;
        b->stack[0] = node;
        b->depth = 1;
        if (b->depth_limit < 1 || b->room == 0) {  /* a finding, or past the limit */
            give_up(b);
        }
        return;
    }
    int appended = PyList_Append(SLOT(b->stack[b->depth - 1], b->layout.children), node);
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
    size_t len = strlen(name), at = len;
    while (at > 0 && name[at - 1] != '}') {
        at--;
    }
    uint32_t hash = name_hash(at ? fnv(FNV_BASIS, name, at) : 0, fnv(FNV_BASIS, name + at, len - at));
    Name found;  /* names.get(name) or _resolve(name) */
    if (find_name(b->names, b->resolve, hash, NULL, 0, name, len, &found) < 0) {
        give_up(b);
        return;
    }
    start_element(b, &found, atts);
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
 * on_start (quick_start: the name's hash and parts at hand, not joined) for
 * each element, on_text for each run of text (the references replaced),
 * on_end; and, once the document is read, what on_namespace would have left
 * in declared (the last default namespace).  Everything else, or anything
 * it is unsure of, it leaves (QUICK_LEFT) before the end of the document,
 * and expat reads the document from the start.  Every document it reads to
 * the end is well-formed for expat and reads the same. */
#define QUICK_DONE 1
#define QUICK_LEFT 0
#define QUICK_NAME 256   /* longer names: expat */

typedef struct {
    const char *name, *uri;
    size_t name_len, uri_len;
    uint32_t prefix;     /* prefix_hash(uri, uri_len) */
} QuickOpen;

static const char *const quick_declarations[] = {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
    "<?xml version=\"1.0\"?>",
};

/* what each byte may be to the quick reader */
#define Q_NAME_START 1   /* [A-Za-z_] */
#define Q_NAME 2         /* [A-Za-z0-9._-] */
#define Q_SPACE 4        /* space, tab, LF */
#define Q_TEXT 8         /* text as it is: tab, LF, ASCII from space, but '&', '<', ']' */
#define Q_URI 16         /* in a namespace URI: ASCII from space, but '&', '<', '}' */
static unsigned char quick_class[256];

static void
quick_classes(void)
{
    for (int c = 0; c < 256; c++) {
        unsigned char k = 0;
        int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (letter) {
            k |= Q_NAME_START | Q_NAME;
        }
        if ((c >= '0' && c <= '9') || c == '.' || c == '-') {
            k |= Q_NAME;
        }
        if (c == ' ' || c == '\t' || c == '\n') {
            k |= Q_SPACE;
        }
        if (((c >= 0x20 && c < 0x80) || c == '\t' || c == '\n') && c != '&' && c != '<' && c != ']') {
            k |= Q_TEXT;
        }
        if (c >= 0x20 && c < 0x80 && c != '&' && c != '<' && c != '}') {
            k |= Q_URI;
        }
        quick_class[c] = k;
    }
}

#define QUICK_IS(c, class) (quick_class[(unsigned char)(c)] & (class))

static const char *
quick_spaces(const char *p, const char *end)
{
    while (p < end && QUICK_IS(*p, Q_SPACE)) {
        p++;
    }
    return p;
}

/* the length of the name at s (0: not one the quick reader takes), its
 * bytes' FNV-1a hash into *hash */
static size_t
quick_name(const char *s, const char *end, uint32_t *hash)
{
    const char *p = s;
    if (p >= end || !QUICK_IS(*p, Q_NAME_START)) {
        return 0;
    }
    uint32_t h = FNV_BASIS;
    while (p < end && QUICK_IS(*p, Q_NAME)) {
        h = (h ^ (unsigned char)*p) * FNV_PRIME;
        p++;
    }
    size_t n = (size_t)(p - s);
    if (n > QUICK_NAME || (n >= 3 && (s[0] | 0x20) == 'x' && (s[1] | 0x20) == 'm'
                                    && (s[2] | 0x20) == 'l')) {
        return 0;
    }
    *hash = h;
    return n;
}

/* the text from s to '<' (or end) handed to on_text; NULL to leave */
static const char *
quick_text(Builder *b, const char *s, const char *end)
{
    const char *run = s, *p = s;
    while (p < end) {
        if (QUICK_IS(*p, Q_TEXT)) {
            p++;
            continue;
        }
        if (*p == '<') {
            break;
        }
        if (*p == ']') {
            if (end - p >= 3 && p[1] == ']' && p[2] == '>') {
                return NULL;
            }
            p++;
            continue;
        }
        if (*p != '&') {  /* not ASCII, or a control */
            return NULL;
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

/* on_start for the quick reader, which has the name's parts and hash at hand */
static void
quick_start(Builder *b, const QuickOpen *open, uint32_t local_hash)
{
    static const XML_Char *no_attributes[1] = {NULL};
    if (b->bail) {
        return;
    }
    flush_text(b, 0);
    if (b->bail) {
        return;
    }
    Name found;  /* names.get(name) or _resolve(name) */
    if (find_name(b->names, b->resolve, name_hash(open->prefix, local_hash), open->uri,
                  open->uri_len, open->name, open->name_len, &found) < 0) {
        give_up(b);
        return;
    }
    start_element(b, &found, no_attributes);
}

/* declared[None] = the default namespace last declared (its URI as the
 * document spells it, None for xmlns=""), as on_namespace would have set it
 * for each */
static void
quick_declared(Builder *b, const char *uri, size_t uri_len)
{
    static PyObject *last;  /* the str of the URI declared last time (the caller hashes it) */
    PyObject *value;
    if (uri_len == 0) {
        value = Py_NewRef(Py_None);
    }
    else if (last != NULL && (size_t)PyUnicode_GET_LENGTH(last) == uri_len
             && memcmp(PyUnicode_1BYTE_DATA(last), uri, uri_len) == 0) {  /* ASCII, as uri */
        value = Py_NewRef(last);
    }
    else {
        value = PyUnicode_DecodeUTF8(uri, (Py_ssize_t)uri_len, "strict");
        if (value != NULL) {
            Py_XSETREF(last, Py_NewRef(value));
        }
    }
    if (value == NULL || PyDict_SetItem(b->declared, Py_None, value) < 0) {
        give_up(b);
    }
    Py_XDECREF(value);
}

static int
quick_read(Builder *b, const char *s, size_t size)
{
    const char *p = s, *end = s + size;
    QuickOpen open[HARD_MAX_DEPTH + 1];
    size_t depth = 0;
    int seen_root = 0;
    const char *declared = NULL;  /* the last default namespace declared, if any */
    size_t declared_len = 0;

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
            if (QUICK_IS(*p, Q_SPACE)) {
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
            p = quick_spaces(p + top->name_len, end);
            if (p >= end || *p != '>') {
                return QUICK_LEFT;
            }
            p++;
            on_end(b, NULL);
            depth--;
            continue;
        }
        uint32_t local_hash;
        size_t name_len = quick_name(p, end, &local_hash);
        if (name_len == 0 || depth >= HARD_MAX_DEPTH) {
            return QUICK_LEFT;
        }
        QuickOpen *top = &open[depth];
        top->name = p;
        top->name_len = name_len;
        if (depth) {
            top->uri = open[depth - 1].uri;
            top->uri_len = open[depth - 1].uri_len;
            top->prefix = open[depth - 1].prefix;
        }
        else {
            top->uri = "";
            top->uri_len = 0;
            top->prefix = 0;
        }
        p += name_len;
        const char *uri = NULL;
        size_t uri_len = 0;
        if (p < end && QUICK_IS(*p, Q_SPACE)) {
            p = quick_spaces(p, end);
            if ((size_t)(end - p) >= 5 && memcmp(p, "xmlns", 5) == 0) {
                p = quick_spaces(p + 5, end);
                if (p >= end || *p != '=') {
                    return QUICK_LEFT;
                }
                p = quick_spaces(p + 1, end);
                if (p >= end || (*p != '"' && *p != '\'')) {
                    return QUICK_LEFT;
                }
                char quote = *p++;
                uri = p;
                while (p < end && *p != quote) {
                    if (!QUICK_IS(*p, Q_URI)) {
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
                p = quick_spaces(p, end);
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
            if (uri_len >= QUICK_EXPANDED) {
                return QUICK_LEFT;
            }
            top->uri = uri;
            top->uri_len = uri_len;
            top->prefix = prefix_hash(uri, uri_len);
            declared = uri;  /* (expat hands each declaration over before the element) */
            declared_len = uri_len;
        }
        /* the name as expat's namespace processing hands it over: "URI}local" or "local" */
        if (top->uri_len + 1 + name_len + 1 > QUICK_EXPANDED) {
            return QUICK_LEFT;
        }
        quick_start(b, top, local_hash);
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
    if (declared != NULL && !b->bail) {
        quick_declared(b, declared, declared_len);
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
    b.names = args[6];
    b.resolve = args[7];
    b.attrs_fn = args[8];
    b.root_keys = args[9];
    b.default_ns = args[10];
    use_names(b.names);

    const char *s = PyBytes_AS_STRING(data);
    Py_ssize_t room = b.room;  /* the elements the quick reader counted are counted again */
    if (encoding_name == NULL || strcmp(encoding_name, "utf-8") == 0) {
        b.ascii = 1;
        if (quick_read(&b, s, (size_t)size) == QUICK_DONE) {
            return finish(&b, 1);
        }
        /* left: expat reads the document from the start, into a fresh builder */
        PyDict_Clear(b.declared);
        Py_CLEAR(b.root);
        b.depth = 0;
        b.text_len = 0;
        b.room = room;
        b.ascii = 0;
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
    quick_classes();
    return PyModule_Create(&module_def);
}
