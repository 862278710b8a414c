/* Optional C accelerator for the WBXML reader's token loop.
 *
 * The pure-Python reader (dmgateway/codec/wbxml_reader.py) is the reference.
 * This module reads only the common subset of a WBXML body -- tags with or
 * without content on any code page, END, SWITCH_PAGE, one STR_I or OPAQUE
 * piece per element, UTF-8 text -- and builds the same Node objects.  For
 * anything else (attributes, LITERAL, STR_T, ENTITY, PI, extensions, mixed or
 * multi-piece text, text XML cannot carry, a limit reached, any malformed or
 * truncated input) it returns None before any unbounded work, and the pure
 * reader reads the document again and answers (or raises) exactly as always.
 *
 * decode_model reads the same subset into a struct tree (_message_tree.h)
 * and maps it to the model without Nodes; decode_xml (_xml_tree.h) does so
 * for XML.
 *
 * Every read is bounds-checked against the document length; nesting is held
 * in a heap array bounded by max_depth; the element count by max_elements.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* the global tokens this reader handles; the tag tables' kinds (K_* in
 * wbxml_tables.py) are passed in by the caller */
#define T_SWITCH_PAGE 0x00
#define T_END 0x01
#define T_STR_I 0x03
#define T_OPAQUE 0xC3

#include "_node_layout.h"
#include "_model_mapping.h"
#include "_xml_tree.h"

/* A new Node with its five slots set; steals a reference to ``text``. */
/* An OPAQUE's length (a WBXML mb_u_int32 of at most 32 bits) read at *p,
 * which moves past it: -1 if it is malformed or longer than the bytes left. */
static Py_ssize_t
opaque_length(const unsigned char *data, Py_ssize_t *p, Py_ssize_t end)
{
    unsigned long long value = 0;
    for (int i = 0; i < 5 && *p < end; i++) {
        unsigned char c = data[(*p)++];
        value = (value << 7) | (c & 0x7F);
        if (c < 0x80) {
            if (value > 0xFFFFFFFFULL || (unsigned long long)(end - *p) < value) {
                return -1;
            }
            return (Py_ssize_t)value;
        }
    }
    return -1;
}

static PyObject *
new_node(const NodeLayout *layout, PyObject *name, PyObject *ns, PyObject *text)
{
    PyObject *children = PyList_New(0);
    if (children == NULL) {
        Py_XDECREF(text);
        return NULL;
    }
    PyObject *node = layout->type->tp_alloc(layout->type, 0);
    if (node == NULL) {
        Py_DECREF(children);
        Py_XDECREF(text);
        return NULL;
    }
    Py_INCREF(name);
    SLOT(node, layout->name) = name;
    Py_INCREF(ns);
    SLOT(node, layout->ns) = ns;
    SLOT(node, layout->children) = children;
    if (text == NULL) {
        Py_INCREF(Py_None);
        text = Py_None;
    }
    SLOT(node, layout->text) = text;
    Py_INCREF(Py_None);
    SLOT(node, layout->attrs) = Py_None;
    return node;
}

/* Text XML can carry, in valid UTF-8 (the strict decoder checks the rest):
 * no C0 control but TAB, LF, CR, and no U+FFFE / U+FFFF (EF BF BE/BF). */
static int
xml_text_ok(const unsigned char *s, Py_ssize_t n, int *ascii)
{
    unsigned char high = 0;  /* (any byte from 0x80: not ASCII) */
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        high |= c;
        if (c < 0x20) {
            if (c != 0x09 && c != 0x0A && c != 0x0D) {
                return 0;
            }
        }
        else if (c == 0xEF && i + 2 < n && s[i + 1] == 0xBF && (s[i + 2] & 0xFE) == 0xBE) {
            return 0;
        }
    }
    *ascii = high < 0x80;
    return 1;
}

typedef struct {
    PyObject **items;     /* open elements, borrowed (each is held by its parent or root) */
    Py_ssize_t size, cap;
} Stack;

static int
stack_push(Stack *st, PyObject *node)
{
    if (st->size == st->cap) {
        Py_ssize_t cap = st->cap ? st->cap * 2 : 32;
        PyObject **items = PyMem_Realloc(st->items, (size_t)cap * sizeof(PyObject *));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        st->items = items;
        st->cap = cap;
    }
    st->items[st->size++] = node;
    return 0;
}

/* The token ``b`` in the code page ``tags`` (one of ``tag_pages``' tables
 * of 256 ``(name, ns, code)`` tuples): 0 with *entry and *code set, or -1
 * when the table is not of that shape (the pure reader judges). */
static int
tag_entry(PyObject *tags, unsigned char b, PyObject **entry, long *code)
{
    if (!PyList_Check(tags) || PyList_GET_SIZE(tags) != 256) {
        return -1;
    }
    PyObject *item = PyList_GET_ITEM(tags, b);
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3) {
        return -1;
    }
    long value = PyLong_AsLong(PyTuple_GET_ITEM(item, 2));
    if (value == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    *entry = item;
    *code = value;
    return 0;
}

/* decode_body(data, pos, tag_pages, node_cls, max_depth, max_elements, k_end, k_str_i,
 *             k_switch, k_opaque) -> Node or None
 *
 * ``tag_pages`` is the compiled vocabulary's list of 256 tables of 256
 * ``(name, ns, code)`` tuples; ``max_elements`` is None or an int. */
static PyObject *
decode_body(PyObject *module, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, max_depth;
    PyObject *tag_pages, *node_cls, *max_elements_obj;
    long k_end, k_str_i, k_switch, k_opaque;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*nO!OnOllll", &view, &pos, &PyList_Type, &tag_pages,
                          &node_cls, &max_depth, &max_elements_obj,
                          &k_end, &k_str_i, &k_switch, &k_opaque)) {
        return NULL;
    }
    NodeLayout layout;
    Py_ssize_t max_elements = -1;  /* -1: no limit */
    if (max_elements_obj != Py_None) {
        max_elements = PyLong_AsSsize_t(max_elements_obj);
        if (max_elements < 0) {  /* negative, or too large for C: the pure reader judges */
            PyErr_Clear();
            PyBuffer_Release(&view);
            Py_RETURN_NONE;
        }
    }
    if (PyList_GET_SIZE(tag_pages) != 256 || node_layout(node_cls, &layout) < 0
            || pos < 0 || max_depth < 0) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }

    const unsigned char *data = view.buf;
    const Py_ssize_t end = view.len;
    PyObject *tags = PyList_GET_ITEM(tag_pages, 0);
    PyObject *root = NULL;
    PyObject *cur = NULL;      /* the open element (borrowed) */
    Stack stack = {NULL, 0, 0};
    Py_ssize_t count = 0;
    int failed = 0;            /* 1: fall back to the pure reader; -1: a Python error */

    while (1) {
        PyObject *entry;
        long code;
        if (pos >= end || tag_entry(tags, data[pos], &entry, &code) < 0) {
            failed = 1;
            break;
        }
        if (code == 0 || code == 0x40) {  /* an element: empty, or with content */
            PyObject *name = PyTuple_GET_ITEM(entry, 0);
            PyObject *ns = PyTuple_GET_ITEM(entry, 1);
            pos++;
            count++;
            if ((max_elements >= 0 && count > max_elements)
                    || (code == 0x40 && (cur == NULL ? 0 : stack.size + 1) >= max_depth)
                    || (cur != NULL && SLOT(cur, layout.text) != Py_None)) {
                failed = 1;  /* a limit, or text and elements mixed: the pure reader says */
                break;
            }
            PyObject *node = new_node(&layout, name, ns, NULL);
            if (node == NULL) {
                failed = -1;
                break;
            }
            if (cur == NULL) {
                root = node;
            }
            else {
                int rc = PyList_Append(SLOT(cur, layout.children), node);
                Py_DECREF(node);
                if (rc < 0) {
                    failed = -1;
                    break;
                }
            }
            if (code == 0x40) {
                if (cur != NULL && stack_push(&stack, cur) < 0) {
                    failed = -1;
                    break;
                }
                cur = node;
            }
            else if (cur == NULL) {
                break;  /* an empty root element: the whole document */
            }
            continue;
        }
        if (code == k_end) {
            if (cur == NULL) {
                failed = 1;
                break;
            }
            pos++;
            PyObject *text = SLOT(cur, layout.text);
            if (PyUnicode_CheckExact(text) && PyUnicode_GET_LENGTH(text) == 0) {
                SLOT(cur, layout.text) = Py_None;
                Py_INCREF(Py_None);
                Py_DECREF(text);
            }
            if (stack.size == 0) {
                break;  /* the root element closed */
            }
            cur = stack.items[--stack.size];
            continue;
        }
        if (code == k_str_i || code == k_opaque) {
            if (cur == NULL || SLOT(cur, layout.text) != Py_None
                    || PyList_GET_SIZE(SLOT(cur, layout.children)) != 0) {
                failed = 1;  /* outside the root, or a second piece, or mixed content */
                break;
            }
            PyObject *text;
            if (code == k_str_i) {
                const unsigned char *s = data + pos + 1;
                const unsigned char *nul = memchr(s, 0, (size_t)(end - pos - 1));
                int ascii;
                if (nul == NULL || !xml_text_ok(s, nul - s, &ascii)) {
                    failed = 1;
                    break;
                }
                if (ascii && nul - s > 1) {  /* what the decoder makes of ASCII, without its checks */
                    text = PyUnicode_New(nul - s, 127);
                    if (text != NULL) {
                        memcpy(PyUnicode_1BYTE_DATA(text), s, (size_t)(nul - s));
                    }
                }
                else {  /* (no or one character: the decoder's shared str) */
                    text = PyUnicode_DecodeUTF8((const char *)s, nul - s, NULL);
                }
                if (text == NULL) {
                    if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                        failed = -1;
                        break;
                    }
                    PyErr_Clear();
                    failed = 1;
                    break;
                }
                pos = (nul - data) + 1;
            }
            else {  /* OPAQUE: mb_u_int32 length, then the bytes */
                Py_ssize_t p = pos + 1;
                Py_ssize_t value = opaque_length(data, &p, end);
                if (value < 0) {
                    failed = 1;
                    break;
                }
                text = PyBytes_FromStringAndSize((const char *)data + p, value);
                if (text == NULL) {
                    failed = -1;
                    break;
                }
                pos = p + value;
            }
            PyObject *old = SLOT(cur, layout.text);
            SLOT(cur, layout.text) = text;
            Py_DECREF(old);
            continue;
        }
        if (code == k_switch) {
            if (pos + 1 >= end) {
                failed = 1;
                break;
            }
            tags = PyList_GET_ITEM(tag_pages, data[pos + 1]);
            pos += 2;
            continue;
        }
        failed = 1;  /* attributes, LITERAL, STR_T, ENTITY, PI, extensions, unknown tags */
        break;
    }
    PyMem_Free(stack.items);
    PyBuffer_Release(&view);
    if (failed == 0 && pos != end) {
        failed = 1;  /* something after the root element (PIs, or an error) */
    }
    if (failed) {
        Py_XDECREF(root);
        if (failed < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return root;
}

/* decode_model(data, pos, tag_pages, max_depth, max_elements, k_end, k_str_i,
 *              k_switch, k_opaque) -> the SyncML model, or None
 *
 * wbxml.decode's fast path: the body decode_body reads (the same subset, the
 * same limits and refusals), read into a Tree (_message_tree.h) instead of
 * Nodes and mapped by map_tree: ASCII text stays in ``data`` until the model
 * keeps it.  A root other than SyncML, a name map_tree does not know, or a
 * message it does not map answers None too, and the caller reads the message
 * into Nodes as always. */
static PyObject *
decode_model(PyObject *module, PyObject *args)
{
    Py_ssize_t pos;
    PyObject *data_obj, *tag_pages, *max_depth_obj, *max_elements_obj;
    long k_end, k_str_i, k_switch, k_opaque;
    (void)module;
    if (!PyArg_ParseTuple(args, "O!nO!OOllll", &PyBytes_Type, &data_obj, &pos, &PyList_Type,
                          &tag_pages, &max_depth_obj, &max_elements_obj,
                          &k_end, &k_str_i, &k_switch, &k_opaque)) {
        return NULL;
    }
    Py_ssize_t max_depth = PyLong_Check(max_depth_obj) ? PyLong_AsSsize_t(max_depth_obj) : -1;
    if (max_depth < 0) {  /* not an int, negative, or too large for C: the pure reader judges */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_ssize_t max_elements = -1;  /* -1: no limit */
    if (max_elements_obj != Py_None) {
        max_elements = PyLong_AsSsize_t(max_elements_obj);
        if (max_elements < 0) {  /* negative, or too large for C: the pure reader judges */
            PyErr_Clear();
            Py_RETURN_NONE;
        }
    }
    if (!M.ready || PyList_GET_SIZE(tag_pages) != 256 || pos < 0) {
        Py_RETURN_NONE;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(data_obj);
    const Py_ssize_t end = PyBytes_GET_SIZE(data_obj);
    PyObject *tags = PyList_GET_ITEM(tag_pages, 0);
    Tree tree;
    tree_init(&tree);
    Py_ssize_t cur = -1;       /* the open element */
    Py_ssize_t *stack = NULL;  /* the elements open above it */
    Py_ssize_t depth = 0, cap = 0, count = 0;
    int failed = 0;

    while (1) {
        PyObject *entry;
        long code;
        if (pos >= end || tag_entry(tags, data[pos], &entry, &code) < 0) {
            failed = 1;
            break;
        }
        if (code == 0 || code == 0x40) {  /* an element: empty, or with content */
            PyObject *name = PyTuple_GET_ITEM(entry, 0);
            pos++;
            count++;
            TNode *parent = cur < 0 ? NULL : &tree.nodes[cur];
            if ((max_elements >= 0 && count > max_elements)
                    || (code == 0x40 && (cur < 0 ? 0 : depth + 1) >= max_depth)
                    || (parent != NULL && (parent->chars != NULL || parent->text != NULL))) {
                failed = 1;  /* a limit, or text and elements mixed: the pure reader says */
                break;
            }
            int element = name_code(name);
            if (cur < 0 ? element < 0 || PyUnicode_Compare(name, M.root_name) != 0
                        : element <= 0) {
                failed = 1;  /* a message map_tree does not map */
                break;
            }
            Py_ssize_t at = tree_add(&tree, element, cur);
            if (at < 0) {
                failed = 1;
                break;
            }
            if (code == 0x40) {
                if (cur >= 0) {
                    if (depth == cap) {
                        Py_ssize_t more = cap ? cap * 2 : 32;
                        Py_ssize_t *grown = PyMem_Realloc(stack, (size_t)more * sizeof(Py_ssize_t));
                        if (grown == NULL) {
                            failed = 1;
                            break;
                        }
                        stack = grown;
                        cap = more;
                    }
                    stack[depth++] = cur;
                }
                cur = at;
            }
            else if (cur < 0) {
                break;  /* an empty root element: the whole document */
            }
            continue;
        }
        if (code == k_end) {
            if (cur < 0) {
                failed = 1;
                break;
            }
            pos++;
            TNode *node = &tree.nodes[cur];
            if (node->chars != NULL && node->len == 0) {
                node->chars = NULL;  /* an empty string: no text */
            }
            if (depth == 0) {
                break;  /* the root element closed */
            }
            cur = stack[--depth];
            continue;
        }
        if (code == k_str_i || code == k_opaque) {
            TNode *node = cur < 0 ? NULL : &tree.nodes[cur];
            if (node == NULL || node->chars != NULL || node->text != NULL || node->count != 0) {
                failed = 1;  /* outside the root, or a second piece, or mixed content */
                break;
            }
            if (code == k_str_i) {
                const unsigned char *s = data + pos + 1;
                const unsigned char *nul = memchr(s, 0, (size_t)(end - pos - 1));
                int ascii;
                if (nul == NULL || !xml_text_ok(s, nul - s, &ascii)) {
                    failed = 1;
                    break;
                }
                if (ascii) {  /* kept as bytes of data until the model keeps it */
                    node->chars = (const char *)s;
                    node->len = nul - s;
                }
                else if ((node->text = PyUnicode_DecodeUTF8((const char *)s, nul - s, NULL)) == NULL) {
                    failed = 1;
                    break;
                }
                pos = (nul - data) + 1;
            }
            else {  /* OPAQUE: mb_u_int32 length, then the bytes */
                Py_ssize_t p = pos + 1;
                Py_ssize_t value = opaque_length(data, &p, end);
                if (value < 0) {
                    failed = 1;
                    break;
                }
                node->text = PyBytes_FromStringAndSize((const char *)data + p, value);
                if (node->text == NULL) {
                    failed = 1;
                    break;
                }
                pos = p + value;
            }
            continue;
        }
        if (code == k_switch) {
            if (pos + 1 >= end) {
                failed = 1;
                break;
            }
            tags = PyList_GET_ITEM(tag_pages, data[pos + 1]);
            pos += 2;
            continue;
        }
        failed = 1;  /* attributes, LITERAL, STR_T, ENTITY, PI, extensions, unknown tags */
        break;
    }
    PyMem_Free(stack);
    PyObject *result = NULL;
    if (!failed && pos == end) {  /* (something after the root: PIs, or an error) */
        result = map_tree(tree_root(&tree));
    }
    tree_free(&tree);
    if (result == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return result;
}


/* ------------------------------------------------------------------------
 * The writer's element loop (wbxml_writer._write_children, common subset)
 */

typedef struct {
    unsigned char *buf;
    Py_ssize_t len, cap;
} Out;

static int
out_reserve(Out *out, Py_ssize_t more)
{
    if (more > PY_SSIZE_T_MAX / 2 - out->len) {
        PyErr_NoMemory();
        return -1;
    }
    if (out->len + more <= out->cap) {
        return 0;
    }
    Py_ssize_t cap = out->cap ? out->cap : 1024;
    while (cap < out->len + more) {
        cap *= 2;
    }
    unsigned char *buf = PyMem_Realloc(out->buf, (size_t)cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    out->buf = buf;
    out->cap = cap;
    return 0;
}

static int
out_write(Out *out, const void *bytes, Py_ssize_t n)
{
    if (out_reserve(out, n) < 0) {
        return -1;
    }
    memcpy(out->buf + out->len, bytes, (size_t)n);
    out->len += n;
    return 0;
}

static int
out_byte(Out *out, unsigned char b)
{
    return out_write(out, &b, 1);
}

static int
out_mb(Out *out, size_t value)
{
    unsigned char tmp[10];
    int n = 0;
    tmp[n++] = value & 0x7F;
    value >>= 7;
    while (value) {
        tmp[n++] = 0x80 | (value & 0x7F);
        value >>= 7;
    }
    unsigned char rev[10];
    for (int i = 0; i < n; i++) {
        rev[i] = tmp[n - 1 - i];
    }
    return out_write(out, rev, n);
}

/* d.get(key) for str keys in a dict (borrowed), or NULL; never runs Python code */
static PyObject *
lookup(PyObject *dict, PyObject *key)
{
    if (dict == NULL || !PyDict_CheckExact(dict)) {
        return NULL;
    }
    PyObject *value = PyDict_GetItemWithError(dict, key);
    if (value == NULL) {
        PyErr_Clear();
    }
    return value;
}

typedef struct {
    PyObject *list;   /* strong reference */
    Py_ssize_t next;
} Frame;

/* encode_body(root, page_tags, enc_tags, node_cls, max_depth) -> bytes or None
 *
 * The WBXML body of ``root`` from tag page 0, byte for byte what
 * ``_write_children`` writes, for trees of exact Nodes with str names and
 * namespaces, no attributes, tokens for every tag, and str (UTF-8, no NUL) or
 * bytes text.  None for anything else: the pure writer writes or raises. */
static PyObject *
encode_body(PyObject *module, PyObject *args)
{
    PyObject *root, *page_tags, *enc_tags, *node_cls;
    Py_ssize_t max_depth;
    (void)module;
    if (!PyArg_ParseTuple(args, "OO!O!On", &root, &PyList_Type, &page_tags, &PyDict_Type,
                          &enc_tags, &node_cls, &max_depth)) {
        return NULL;
    }
    NodeLayout layout;
    if (PyList_GET_SIZE(page_tags) != 256 || node_layout(node_cls, &layout) < 0
            || max_depth < 1) {
        Py_RETURN_NONE;
    }
    PyObject *roots = PyList_New(1);
    if (roots == NULL) {
        return NULL;
    }
    Py_INCREF(root);
    PyList_SET_ITEM(roots, 0, root);

    Out out = {NULL, 0, 0};
    Frame *frames = PyMem_Malloc(32 * sizeof(Frame));
    Py_ssize_t nframes = 1, cap = 32;
    int failed = 0;  /* 1: fall back; -1: a Python error */
    if (frames == NULL) {
        Py_DECREF(roots);
        return PyErr_NoMemory();
    }
    frames[0].list = roots;
    frames[0].next = 0;
    int tpage = 0;
    PyObject *here = PyList_GET_ITEM(page_tags, 0);

    while (nframes > 0 && !failed) {
        Frame *f = &frames[nframes - 1];
        if (f->next >= PyList_GET_SIZE(f->list)) {
            Py_DECREF(f->list);
            nframes--;
            if (nframes > 0 && out_byte(&out, 0x01) < 0) {  /* END of the element that held it */
                failed = -1;
            }
            continue;
        }
        PyObject *node = PyList_GET_ITEM(f->list, f->next);
        f->next++;
        if (!Py_IS_TYPE(node, layout.type)) {
            failed = 1;
            break;
        }
        PyObject *name = SLOT(node, layout.name), *ns = SLOT(node, layout.ns);
        PyObject *children = SLOT(node, layout.children), *text = SLOT(node, layout.text);
        PyObject *attrs = SLOT(node, layout.attrs);
        if (name == NULL || ns == NULL || children == NULL || text == NULL || attrs == NULL
                || !PyUnicode_CheckExact(name) || !PyUnicode_CheckExact(ns)
                || !PyList_CheckExact(children)
                || (attrs != Py_None
                    && !(PyDict_CheckExact(attrs) && PyDict_GET_SIZE(attrs) == 0))) {
            failed = 1;  /* attributes, or anything unusual */
            break;
        }
        PyObject *forms = lookup(lookup(here, ns), name);
        if (forms == NULL) {  /* a tag of another page: switch, or a LITERAL (fall back) */
            PyObject *choice = lookup(lookup(enc_tags, ns), name);
            if (choice == NULL || !PyTuple_Check(choice) || PyTuple_GET_SIZE(choice) != 3) {
                failed = 1;
                break;
            }
            long page = PyLong_AsLong(PyTuple_GET_ITEM(choice, 0));
            if (page < 0 || page > 255) {
                PyErr_Clear();
                failed = 1;
                break;
            }
            tpage = (int)page;
            if (out_byte(&out, 0x00) < 0 || out_byte(&out, (unsigned char)tpage) < 0) {
                failed = -1;
                break;
            }
            here = PyList_GET_ITEM(page_tags, tpage);
            forms = PyTuple_GET_ITEM(choice, 1);
        }
        if (!PyTuple_Check(forms) || PyTuple_GET_SIZE(forms) < 1) {
            failed = 1;
            break;
        }
        long token = PyLong_AsLong(PyTuple_GET_ITEM(forms, 0));
        if (token < 0 || token > 0x3F) {
            PyErr_Clear();
            failed = 1;
            break;
        }
        Py_ssize_t nkids = PyList_GET_SIZE(children);
        if (text == Py_None || (PyUnicode_CheckExact(text) && PyUnicode_GET_LENGTH(text) == 0
                                && nkids == 0)) {
            if (nkids == 0) {
                if (out_byte(&out, (unsigned char)token) < 0) {
                    failed = -1;
                }
                continue;
            }
            /* pure: depth + len(stack) >= max_depth - 1 fails; here frames hold root too */
            if (nframes >= max_depth) {
                failed = 1;
                break;
            }
            if (out_byte(&out, (unsigned char)(token | 0x40)) < 0) {
                failed = -1;
                break;
            }
            if (nframes == cap) {
                Frame *more = PyMem_Realloc(frames, (size_t)cap * 2 * sizeof(Frame));
                if (more == NULL) {
                    PyErr_NoMemory();
                    failed = -1;
                    break;
                }
                frames = more;
                cap *= 2;
            }
            Py_INCREF(children);
            frames[nframes].list = children;
            frames[nframes].next = 0;
            nframes++;
            continue;
        }
        if (nkids != 0) {
            failed = 1;  /* text and children: the pure writer raises */
            break;
        }
        if (PyUnicode_CheckExact(text)) {
            Py_ssize_t n;
            const char *utf8 = PyUnicode_AsUTF8AndSize(text, &n);
            if (utf8 == NULL) {  /* lone surrogates */
                PyErr_Clear();
                failed = 1;
                break;
            }
            if (memchr(utf8, 0, (size_t)n) != NULL) {
                failed = 1;
                break;
            }
            unsigned char head[2] = {(unsigned char)(token | 0x40), 0x03};
            unsigned char tail[2] = {0x00, 0x01};
            if (out_write(&out, head, 2) < 0 || out_write(&out, utf8, n) < 0
                    || out_write(&out, tail, 2) < 0) {
                failed = -1;
                break;
            }
        }
        else if (PyBytes_CheckExact(text)) {
            unsigned char head[2] = {(unsigned char)(token | 0x40), 0xC3};
            if (out_write(&out, head, 2) < 0
                    || out_mb(&out, (size_t)PyBytes_GET_SIZE(text)) < 0
                    || out_write(&out, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text)) < 0
                    || out_byte(&out, 0x01) < 0) {
                failed = -1;
                break;
            }
        }
        else {
            failed = 1;
            break;
        }
    }
    while (nframes > 0) {
        Py_DECREF(frames[--nframes].list);
    }
    PyMem_Free(frames);
    PyObject *result = NULL;
    if (failed == 0) {
        result = PyBytes_FromStringAndSize((const char *)out.buf, out.len);
    }
    else if (failed == 1) {
        PyErr_Clear();
        Py_INCREF(Py_None);
        result = Py_None;
    }
    PyMem_Free(out.buf);
    return result;
}

static PyMethodDef methods[] = {
    {"decode_body", decode_body, METH_VARARGS,
     "Read a WBXML body's common subset into Nodes; None for anything else."},
    {"decode_model", decode_model, METH_VARARGS,
     "The SyncML model of a common WBXML message's body, read without Nodes; None for anything else."},
    {"encode_body", encode_body, METH_VARARGS,
     "Write a Node tree's common subset as a WBXML body; None for anything else."},
    {"decode_xml", (PyCFunction)(void (*)(void))decode_xml, METH_FASTCALL,
     "The SyncML model of a common XML message, read without Nodes; None for anything else."},
    {"map_message", map_message, METH_O,
     "The SyncML model of a common message's Node tree; None for anything else."},
    {"setup_mapping", setup_mapping, METH_VARARGS,
     "Give map_message the Node class, the model classes and _settle_data."},
    {"write_model", write_model, METH_VARARGS,
     "The pieces of a common message written from the model; None for anything else."},
    {"mapping_fields", mapping_fields, METH_NOARGS,
     "The fields map_message sets for each model class."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_wbxml_speedups",
    "Optional C accelerator for dmgateway.codec.wbxml_reader (the pure reader is the reference).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__wbxml_speedups(void)
{
    xt_setup();
    return PyModule_Create(&module_def);
}
