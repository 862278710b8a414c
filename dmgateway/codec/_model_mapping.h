/* Optional C fast paths between element trees, the SyncML model and the writer's
 * pieces: map_message (node -> model, below) and write_model (model -> the
 * pieces of model_writer.write, further down).
 *
 * mapping_reader.node_to_message is the reference of map_message, which
 * reads only the common shapes of a DM message -- SyncHdr, Status, Results, Alert and
 * the item commands (Add, Replace, Delete, Copy, Get, Exec), Atomic and
 * Sequence holding these, each child a
 * known element met once (TargetRef, SourceRef and Item any number of
 * times), values as plain text, Meta with the fields the model has, Items
 * with Target, Source, Meta, Data and MoreData -- and builds the very same
 * model objects (fields set in the order their dataclass __init__ sets
 * them).  For anything else (an unknown or repeated element, element
 * content where a value is expected, OPAQUE values, a missing required
 * element, a number that is not one, unknown commands, Atomic and
 * Sequence nested deeper than MAX_NESTING,
 * embedded markup in Data, a Data Format other than chr or b64 with text,
 * any error) it answers None and the pure reader maps the tree again,
 * answering (or raising) exactly as always.  What it maps has no element the
 * model has no place for, so the message's ``unknown`` is [].
 *
 * The mapping (map_tree) reads a Tree of structs (_message_tree.h):
 * map_message flattens a Node tree into one, and the C readers of common
 * messages (decode_xml in _xml_tree.h, decode_model for WBXML) read the wire
 * into one, so that no Node is made for a message they read.
 *
 * Included by _wbxml_speedups.c (after _node_layout.h); setup_mapping must
 * be called once with the classes (mapping_reader does) before map_message,
 * decode_xml, decode_model or write_model answers anything but None.
 */
#ifndef DMGW_MODEL_MAPPING_H
#define DMGW_MODEL_MAPPING_H

#include <stdint.h>
#include <string.h>

#include "_message_tree.h"

/* element codes; 0 is any other name */
enum {
    E_OTHER, E_SyncHdr, E_SyncBody, E_VerDTD, E_VerProto, E_SessionID, E_MsgID, E_Target,
    E_Source, E_LocURI, E_LocName, E_RespURI, E_NoResp, E_Cred, E_Meta, E_Data, E_Final,
    E_CmdID, E_MsgRef, E_CmdRef, E_Cmd, E_TargetRef, E_SourceRef, E_Chal, E_Item, E_MoreData,
    E_Correlator, E_Status, E_Results, E_Alert, E_Add, E_Replace, E_Delete, E_Copy, E_Get,
    E_Exec, E_Format, E_Type, E_Mark, E_Size, E_Version, E_NextNonce, E_MaxMsgSize,
    E_MaxObjSize, E_Atomic, E_Sequence, E_COUNT
};

static const char *const element_names[E_COUNT] = {
    NULL, "SyncHdr", "SyncBody", "VerDTD", "VerProto", "SessionID", "MsgID", "Target",
    "Source", "LocURI", "LocName", "RespURI", "NoResp", "Cred", "Meta", "Data", "Final",
    "CmdID", "MsgRef", "CmdRef", "Cmd", "TargetRef", "SourceRef", "Chal", "Item", "MoreData",
    "Correlator", "Status", "Results", "Alert", "Add", "Replace", "Delete", "Copy", "Get",
    "Exec", "Format", "Type", "Mark", "Size", "Version", "NextNonce", "MaxMsgSize",
    "MaxObjSize", "Atomic", "Sequence",
};

#define BIT(code) ((uint64_t)1 << (code))
#define COMMANDS (BIT(E_Status) | BIT(E_Results) | BIT(E_Alert) | BIT(E_Add) | BIT(E_Replace) \
                  | BIT(E_Delete) | BIT(E_Copy) | BIT(E_Get) | BIT(E_Exec) | BIT(E_Atomic) \
                  | BIT(E_Sequence))
#define MAX_NESTING 16  /* Atomic and Sequence deeper than this: the pure reader's and writer's */

/* the model classes, and the fields each one's __init__ sets, in order */
enum {
    C_SyncML, C_SyncHdr, C_LocRef, C_Cred, C_Chal, C_Meta, C_Item, C_Status, C_Results,
    C_Alert, C_Add, C_Replace, C_Delete, C_Copy, C_Get, C_Exec, C_Atomic, C_Sequence, C_COUNT
};

static const char *const class_fields[C_COUNT] = {
    "hdr body final unknown",
    "session_id msg_id target source ver_dtd ver_proto resp_uri no_resp cred meta",
    "loc_uri loc_name",
    "meta data",
    "meta",
    "type format mark size next_nonce max_msg_size max_obj_size version emi extra",
    "target source meta data more_data",
    "cmd_id msg_ref cmd_ref cmd target_refs source_refs cred chal data items",
    "cmd_id msg_ref cmd_ref meta target_refs source_refs items",
    "cmd_id no_resp cred data correlator items",
    "cmd_id no_resp cred meta items",
    "cmd_id no_resp cred meta items",
    "cmd_id no_resp cred meta items",
    "cmd_id no_resp cred meta items",
    "cmd_id no_resp cred meta items",
    "cmd_id no_resp cred meta items correlator",
    "cmd_id no_resp meta commands",
    "cmd_id no_resp meta commands",
};

/* the element of each command class (C_Status on) */
static const int class_element[C_COUNT] = {
    0, 0, 0, 0, 0, 0, 0, E_Status, E_Results, E_Alert, E_Add, E_Replace, E_Delete, E_Copy, E_Get,
    E_Exec, E_Atomic, E_Sequence,
};

#define MAX_FIELDS 10

typedef struct {
    int ready;
    NodeLayout layout;
    PyObject *codes;                       /* element name -> code (int) */
    PyObject *root_name;                   /* "SyncML" */
    PyObject *cls[C_COUNT];
    PyObject *fields[C_COUNT];             /* tuple of interned field names */
    PyObject *settle;                      /* mapping_reader._settle_data */
    PyObject *chr, *b64, *sync_hdr, *zero; /* "chr", "b64", "SyncHdr", "0" */
    PyObject *no_args;                     /* () */
    PyObject *node_cls;                    /* layout.type, held */
    PyObject *init[C_COUNT];               /* each class's __init__ at setup (held) */
    PyObject *name[C_COUNT];               /* each command class's NAME at setup (held) */
    unsigned int tag[C_COUNT];             /* tp_version_tag when last seen unchanged */
    PyObject *init_str, *name_str;         /* "__init__", "NAME" */
    /* where each field lives when the class keeps it in a slot (0: set and
     * read through the attribute protocol), and the member descriptor that
     * says so (held: class_intact checks the class still resolves to it) */
    Py_ssize_t offset[C_COUNT][MAX_FIELDS];
    PyObject *member[C_COUNT][MAX_FIELDS];
} MapState;

static MapState M;

static int setup_names(void);
static void setup_attr_slots(void);

/* a Meta's fields by element code: index in class_fields[C_Meta], whether an int */
static int
meta_field(int code, int *is_int)
{
    *is_int = 0;
    switch (code) {
    case E_Type: return 0;
    case E_Format: return 1;
    case E_Mark: return 2;
    case E_Size: *is_int = 1; return 3;
    case E_NextNonce: return 4;
    case E_MaxMsgSize: *is_int = 1; return 5;
    case E_MaxObjSize: *is_int = 1; return 6;
    case E_Version: return 7;
    default: return -1;
    }
}

/* Whether class ``which`` is still the class setup_mapping checked, in what
 * the C paths rely on: object's __new__ and attribute access, the same
 * __init__ (the dataclass's: map_message stands for it) and, for a command,
 * the same NAME (the pure writer's element name). */
static int
class_intact(int which)
{
    PyTypeObject *type = (PyTypeObject *)M.cls[which];
    if (type->tp_new != PyBaseObject_Type.tp_new || type->tp_getattro != PyObject_GenericGetAttr
            || type->tp_setattro != PyObject_GenericSetAttr || type->tp_dict == NULL) {
        return 0;
    }
    PyObject *init = PyDict_GetItemWithError(type->tp_dict, M.init_str);  /* borrowed */
    if (init != M.init[which]) {
        PyErr_Clear();
        return 0;
    }
    if (which >= C_Status) {
        PyObject *name = PyDict_GetItemWithError(type->tp_dict, M.name_str);
        if (name != M.name[which]) {
            PyErr_Clear();
            return 0;
        }
    }
    /* a slot written and read by offset: still the member it was (not, say,
     * a property put over it) */
    PyObject *names = M.fields[which];
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        if (M.member[which][i] != NULL
                && _PyType_Lookup(type, PyTuple_GET_ITEM(names, i)) != M.member[which][i]) {
            return 0;
        }
    }
    return 1;
}

/* The offset of slot ``name`` in instances of ``type`` and its member
 * descriptor (borrowed), or 0 and NULL when ``name`` is not a plain object
 * slot of the type's own layout. */
static Py_ssize_t
field_slot(PyTypeObject *type, PyObject *name, PyObject **member)
{
    PyObject *descr = _PyType_Lookup(type, name);  /* borrowed; no error set */
    *member = NULL;
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)
            || ((PyDescrObject *)descr)->d_type == NULL
            || !PyType_IsSubtype(type, ((PyDescrObject *)descr)->d_type)) {
        return 0;
    }
    PyMemberDef *def = ((PyMemberDescrObject *)descr)->d_member;
    if (def->type != T_OBJECT_EX || (def->flags & READONLY)
            || def->offset < (Py_ssize_t)sizeof(PyObject)
            || def->offset > type->tp_basicsize - (Py_ssize_t)sizeof(PyObject *)) {
        return 0;
    }
    *member = descr;
    return def->offset;
}

/* Whether no model class was changed (monkeypatched) since setup_mapping in
 * a way that makes the C paths answer otherwise than the pure ones: if one
 * was, both answer None until it is put back.  A class's version tag changes
 * with any change to it (or to a base), so an unchanged one is checked by
 * one comparison. */
static int
classes_unchanged(void)
{
    for (int which = 0; which < C_COUNT; which++) {
        PyTypeObject *type = (PyTypeObject *)M.cls[which];
        int valid = type->tp_version_tag != 0;
#ifdef Py_TPFLAGS_VALID_VERSION_TAG
        valid = valid && (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG);
#endif
        if (valid && type->tp_version_tag == M.tag[which]) {
            continue;
        }
        if (!class_intact(which)) {
            return 0;
        }
        M.tag[which] = valid ? type->tp_version_tag : 0;
    }
    return 1;
}

/* A new model object of class ``which`` with its fields set to ``values``
 * (borrowed, in field order), as its __init__ would. */
static PyObject *
make(int which, PyObject *const *values)
{
    PyTypeObject *type = (PyTypeObject *)M.cls[which];
    PyObject *obj = type->tp_new(type, M.no_args, NULL);  /* object.__new__: no __init__ */
    if (obj == NULL) {
        return NULL;
    }
    PyObject *names = M.fields[which];
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        Py_ssize_t offset = M.offset[which][i];
        if (offset != 0 && values[i] != NULL) {  /* a fresh object: the slot is empty */
            Py_INCREF(values[i]);
            SLOT(obj, offset) = values[i];
        }
        else if (PyObject_SetAttr(obj, PyTuple_GET_ITEM(names, i), values[i]) < 0) {
            Py_DECREF(obj);
            return NULL;
        }
    }
    return obj;
}

/* The codes of the element names seen last, by the name object: both
 * readers give each element a name object shared by every element so named
 * (the WBXML tag tables' strings, the XML reader's name table), so a known
 * name is nearly always the object met before.  Each entry holds its name:
 * a name freed could not leave its address to another string. */
#define CODE_SLOTS 128
static struct {
    PyObject *name;
    int code;
} code_cache[CODE_SLOTS];

static void
clear_code_cache(void)
{
    for (int slot = 0; slot < CODE_SLOTS; slot++) {
        Py_CLEAR(code_cache[slot].name);
    }
}

/* The code of element name ``name``, 0 for another name, -1 for anything but a str */
static int
name_code(PyObject *name)
{
    if (name == NULL || !PyUnicode_CheckExact(name)) {
        return -1;
    }
    size_t slot = ((uintptr_t)name >> 4) & (CODE_SLOTS - 1);
    if (code_cache[slot].name == name) {
        return code_cache[slot].code;
    }
    PyObject *found = PyDict_GetItemWithError(M.codes, name);  /* borrowed */
    if (found == NULL) {
        return PyErr_Occurred() ? -1 : E_OTHER;  /* other names are not kept */
    }
    int code = (int)PyLong_AsLong(found);
    Py_INCREF(name);
    Py_XSETREF(code_cache[slot].name, name);  /* (a str: freeing one runs no code) */
    code_cache[slot].code = code;
    return code;
}

/* The code of a Node's name, 0 for another name, -1 for anything but a Node named by a str */
static int
code_of(PyObject *node)
{
    if (!Py_IS_TYPE(node, M.layout.type)) {
        return -1;
    }
    return name_code(SLOT(node, M.layout.name));  /* NULL: deleted */
}

#define MAX_TREE_DEPTH 64  /* deeper Node trees: the pure reader (no message maps so deep) */

/* Into t, the tree of Node ``root`` (each text held); -1 where an element is
 * not a Node named by a str with a list of children, or deeper than
 * MAX_TREE_DEPTH, or memory ran out.  No Python code runs meanwhile. */
static int
tree_of_nodes(Tree *t, PyObject *root)
{
    struct { PyObject *children; Py_ssize_t next, at; } open[MAX_TREE_DEPTH];
    int depth = 0;
    PyObject *node = root;
    Py_ssize_t parent = -1;
    for (;;) {
        int code = code_of(node);
        PyObject *children = code < 0 ? NULL : SLOT(node, M.layout.children);
        Py_ssize_t at;
        if (children == NULL || !PyList_CheckExact(children) || depth == MAX_TREE_DEPTH
                || (at = tree_add(t, code, parent)) < 0) {
            return -1;
        }
        PyObject *text = SLOT(node, M.layout.text);
        if (text == NULL) {
            t->nodes[at].len = -1;
        }
        else if (text != Py_None) {
            t->nodes[at].text = Py_NewRef(text);
        }
        open[depth].children = children;
        open[depth].next = 0;
        open[depth].at = at;
        depth++;
        /* the next element: the first child not yet met of the deepest open one */
        while (depth > 0 && open[depth - 1].next >= PyList_GET_SIZE(open[depth - 1].children)) {
            depth--;
        }
        if (depth == 0) {
            return 0;
        }
        node = PyList_GET_ITEM(open[depth - 1].children, open[depth - 1].next++);
        parent = open[depth - 1].at;
    }
}

/* The children of ``node`` by code into ``one`` (zeroed here): each code in
 * ``allowed``, once unless in ``many``.  -1: another shape. */
static int
scan(const TNode *node, uint64_t allowed, uint64_t many, const TNode **one, uint64_t *seen_out)
{
    memset(one, 0, sizeof(const TNode *) * E_COUNT);
    uint64_t seen = 0;
    for (const TNode *child = node->child; child != NULL; child = child->next) {
        int code = child->code;
        if (code <= 0 || !(allowed & BIT(code))) {
            return -1;
        }
        if (seen & BIT(code)) {
            if (!(many & BIT(code))) {
                return -1;
            }
            continue;
        }
        seen |= BIT(code);
        one[code] = child;
    }
    if (seen_out != NULL) {
        *seen_out = seen;
    }
    return 0;
}

static int
is_ws(Py_UCS4 c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The str of ASCII bytes s[0..n) */
static PyObject *
ascii_str(const char *s, Py_ssize_t n)
{
    PyObject *str = PyUnicode_New(n, 127);
    if (str != NULL && n > 0) {
        memcpy(PyUnicode_1BYTE_DATA(str), s, (size_t)n);
    }
    return str;
}

/* Whether a leaf's text is a str (not None, not OPAQUE bytes) */
static int
has_str_text(const TNode *node)
{
    return node->text != NULL ? PyUnicode_CheckExact(node->text) : node->chars != NULL;
}

/* The text of a leaf with surrounding XML whitespace stripped (a new
 * reference), "" without text; NULL for element content or OPAQUE. */
static PyObject *
value(const TNode *node)
{
    if (node->count != 0 || node->len < 0) {
        return NULL;
    }
    PyObject *text = node->text;
    if (text == NULL) {
        const char *s = node->chars;
        Py_ssize_t start = 0, end = s != NULL ? node->len : 0;
        while (start < end && is_ws((unsigned char)s[start])) {
            start++;
        }
        while (end > start && is_ws((unsigned char)s[end - 1])) {
            end--;
        }
        return ascii_str(s + start, end - start);
    }
    if (!PyUnicode_CheckExact(text) || PyUnicode_READY(text) < 0) {
        return NULL;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), start = 0, end = len;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    while (start < end && is_ws(PyUnicode_READ(kind, data, start))) {
        start++;
    }
    while (end > start && is_ws(PyUnicode_READ(kind, data, end - 1))) {
        end--;
    }
    if (start == 0 && end == len) {
        Py_INCREF(text);
        return text;
    }
    return PyUnicode_Substring(text, start, end);
}

/* The text of a leaf as it is (a new reference): "" without text, the str or
 * OPAQUE bytes it holds; NULL for element content. */
static PyObject *
raw_text(const TNode *node)
{
    if (node->count != 0 || node->len < 0) {
        return NULL;
    }
    if (node->text != NULL) {
        return Py_NewRef(node->text);
    }
    return ascii_str(node->chars, node->chars != NULL ? node->len : 0);
}

/* map(node), or None for a NULL node (an element that is absent); NULL:
 * another shape */
static PyObject *
optional(PyObject *(*map)(const TNode *), const TNode *node)
{
    if (node == NULL) {
        Py_RETURN_NONE;
    }
    return map(node);
}

/* The int of a leaf holding 1 to 20 ASCII digits (after stripping); NULL otherwise */
static PyObject *
number(const TNode *node)
{
    PyObject *text = value(node);
    if (text == NULL) {
        return NULL;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    PyObject *result = NULL;
    if (len >= 1 && len <= 20 && PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *s = PyUnicode_1BYTE_DATA(text);
        Py_ssize_t i = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == len) {
            result = PyLong_FromUnicodeObject(text, 10);
        }
    }
    Py_DECREF(text);
    return result;
}

/* The values of every child of ``node`` with code ``code``, in order (a new list) */
static PyObject *
values_of(const TNode *node, int code)
{
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    for (const TNode *child = node->child; child != NULL; child = child->next) {
        if (child->code != code) {
            continue;
        }
        PyObject *text = value(child);
        if (text == NULL || PyList_Append(list, text) < 0) {
            Py_XDECREF(text);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(text);
    }
    return list;
}

/* Drop the references in values[0..n) (slots never filled are NULL). */
static void
release_all(PyObject **values, int n)
{
    for (int i = 0; i < n; i++) {
        Py_XDECREF(values[i]);
    }
}

static PyObject *
map_meta(const TNode *node)
{
    PyObject *values[MAX_FIELDS] = {NULL};
    PyObject *result = NULL;
    for (const TNode *child = node->child; child != NULL; child = child->next) {
        int is_int, at = meta_field(child->code, &is_int);
        if (at < 0 || values[at] != NULL || !has_str_text(child)) {
            goto done;
        }
        values[at] = is_int ? number(child) : value(child);
        if (values[at] == NULL) {
            goto done;
        }
    }
    for (int i = 0; i < 8; i++) {
        if (values[i] == NULL) {
            Py_INCREF(Py_None);
            values[i] = Py_None;
        }
    }
    if ((values[8] = PyList_New(0)) == NULL || (values[9] = PyList_New(0)) == NULL) {
        goto done;
    }
    result = make(C_Meta, values);
done:
    release_all(values, MAX_FIELDS);
    return result;
}

static PyObject *
map_locref(const TNode *node)
{
    const TNode *one[E_COUNT];
    if (scan(node, BIT(E_LocURI) | BIT(E_LocName), 0, one, NULL) < 0 || one[E_LocURI] == NULL) {
        return NULL;
    }
    PyObject *values[2] = {value(one[E_LocURI]), NULL};
    PyObject *result = NULL;
    if (values[0] != NULL && (values[1] = optional(value, one[E_LocName])) != NULL) {
        result = make(C_LocRef, values);
    }
    Py_XDECREF(values[0]);
    Py_XDECREF(values[1]);
    return result;
}

static PyObject *
optional_cred(const TNode *node)
{
    if (node == NULL) {
        Py_RETURN_NONE;
    }
    const TNode *one[E_COUNT];
    if (scan(node, BIT(E_Meta) | BIT(E_Data), 0, one, NULL) < 0) {
        return NULL;
    }
    PyObject *values[2] = {optional(map_meta, one[E_Meta]), NULL};
    PyObject *result = NULL;
    if (values[0] == NULL) {
        return NULL;
    }
    if (one[E_Data] == NULL) {
        values[1] = PyUnicode_New(0, 0);
    }
    else {
        values[1] = value(one[E_Data]);  /* "" either way when empty */
    }
    if (values[1] != NULL) {
        result = make(C_Cred, values);
    }
    Py_DECREF(values[0]);
    Py_XDECREF(values[1]);
    return result;
}

static PyObject *
optional_chal(const TNode *node)
{
    if (node == NULL) {
        Py_RETURN_NONE;
    }
    const TNode *one[E_COUNT];
    if (scan(node, BIT(E_Meta), 0, one, NULL) < 0) {
        return NULL;
    }
    PyObject *meta = one[E_Meta] != NULL ? map_meta(one[E_Meta]) : NULL;
    if (one[E_Meta] == NULL) {  /* Chal(meta=Meta()) */
        PyObject *values[MAX_FIELDS] = {Py_None, Py_None, Py_None, Py_None, Py_None, Py_None,
                                        Py_None, Py_None, PyList_New(0), PyList_New(0)};
        if (values[8] != NULL && values[9] != NULL) {
            meta = make(C_Meta, values);
        }
        Py_XDECREF(values[8]);
        Py_XDECREF(values[9]);
    }
    if (meta == NULL) {
        return NULL;
    }
    PyObject *result = make(C_Chal, &meta);
    Py_DECREF(meta);
    return result;
}

/* Item data by its Format (_settle_data): str data with no Format, or chr or
 * b64, is kept as is; anything else is _settle_data's to judge */
static PyObject *
settled(PyObject *data, PyObject *fmt)
{
    if (PyUnicode_CheckExact(data) && (fmt == Py_None || PyUnicode_GET_LENGTH(data) == 0
            || (PyUnicode_CheckExact(fmt) && (PyUnicode_Compare(fmt, M.chr) == 0
                                             || PyUnicode_Compare(fmt, M.b64) == 0)))) {
        Py_INCREF(data);
        return data;
    }
    return PyObject_CallFunctionObjArgs(M.settle, data, fmt, NULL);
}

static PyObject *
map_item(const TNode *node, PyObject *inherited)
{
    const TNode *one[E_COUNT];
    if (scan(node, BIT(E_Target) | BIT(E_Source) | BIT(E_Meta) | BIT(E_Data) | BIT(E_MoreData),
             0, one, NULL) < 0) {
        return NULL;
    }
    PyObject *values[5] = {NULL};
    PyObject *result = NULL;
    if ((values[0] = optional(map_locref, one[E_Target])) == NULL
            || (values[1] = optional(map_locref, one[E_Source])) == NULL
            || (values[2] = optional(map_meta, one[E_Meta])) == NULL) {
        goto done;
    }
    const TNode *data_node = one[E_Data];
    if (data_node == NULL) {
        Py_INCREF(Py_None);
        values[3] = Py_None;
    }
    else {
        PyObject *data = raw_text(data_node);  /* NULL: embedded markup */
        if (data == NULL) {
            goto done;
        }
        PyObject *fmt = inherited;
        Py_INCREF(fmt);
        if (values[2] != Py_None) {
            /* held here: a Meta's format need not be held by the Meta (a property) */
            PyObject *own = PyObject_GetAttr(values[2], PyTuple_GET_ITEM(M.fields[C_Meta], 1));
            int truth = own == NULL ? -1 : PyObject_IsTrue(own);
            if (truth < 0) {
                Py_XDECREF(own);
                Py_DECREF(fmt);
                Py_DECREF(data);
                goto done;
            }
            if (truth) {
                Py_SETREF(fmt, own);
            }
            else {
                Py_DECREF(own);
            }
        }
        values[3] = settled(data, fmt);
        Py_DECREF(fmt);
        Py_DECREF(data);
        if (values[3] == NULL) {
            goto done;
        }
    }
    values[4] = one[E_MoreData] != NULL ? Py_True : Py_False;
    Py_INCREF(values[4]);
    result = make(C_Item, values);
done:
    release_all(values, 5);
    return result;
}

/* The Items among the children of ``node`` (a new list) */
static PyObject *
map_items(const TNode *node, PyObject *inherited)
{
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    for (const TNode *child = node->child; child != NULL; child = child->next) {
        if (child->code != E_Item) {
            continue;
        }
        PyObject *item = map_item(child, inherited);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
    }
    return list;
}

/* map_items(node, the Format of the command's Meta ``meta``, or None) */
static PyObject *
map_items_of(const TNode *node, PyObject *meta)
{
    if (meta == Py_None) {
        return map_items(node, Py_None);
    }
    /* held here: a Meta's format need not be held by the Meta (a property) */
    PyObject *inherited = PyObject_GetAttr(meta, PyTuple_GET_ITEM(M.fields[C_Meta], 1));
    if (inherited == NULL) {
        return NULL;
    }
    PyObject *items = map_items(node, inherited);
    Py_DECREF(inherited);
    return items;
}

static PyObject *map_commands(const TNode *node, uint64_t skip, int depth, int *final);

static PyObject *
map_command(const TNode *node, int code, int depth)
{
    const TNode *one[E_COUNT];
    PyObject *values[MAX_FIELDS] = {NULL};
    PyObject *result = NULL;
    int which, n = 0;
    uint64_t common = BIT(E_CmdID) | BIT(E_Item);
    switch (code) {
    case E_Status:
        if (scan(node, common | BIT(E_MsgRef) | BIT(E_CmdRef) | BIT(E_Cmd) | BIT(E_TargetRef)
                 | BIT(E_SourceRef) | BIT(E_Cred) | BIT(E_Chal) | BIT(E_Data),
                 BIT(E_TargetRef) | BIT(E_SourceRef) | BIT(E_Item), one, NULL) < 0
                || one[E_CmdID] == NULL || one[E_Data] == NULL) {
            return NULL;
        }
        which = C_Status;
        n = 10;
        if ((values[0] = value(one[E_CmdID])) == NULL
                || (values[1] = optional(value, one[E_MsgRef])) == NULL) {
            goto done;
        }
        if (one[E_Cmd] == NULL) {
            values[3] = PyUnicode_New(0, 0);
        }
        else {
            values[3] = value(one[E_Cmd]);  /* "" either way when empty */
        }
        if (values[3] == NULL) {
            goto done;
        }
        if (one[E_CmdRef] != NULL) {
            values[2] = value(one[E_CmdRef]);
        }
        else if (PyUnicode_Compare(values[3], M.sync_hdr) == 0) {
            values[2] = M.zero;  /* the SyncHdr's Status without CmdRef */
            Py_INCREF(values[2]);
        }
        if (values[2] == NULL
                || (values[4] = values_of(node, E_TargetRef)) == NULL
                || (values[5] = values_of(node, E_SourceRef)) == NULL
                || (values[6] = optional_cred(one[E_Cred])) == NULL
                || (values[7] = optional_chal(one[E_Chal])) == NULL
                || (values[8] = number(one[E_Data])) == NULL
                || (values[9] = map_items(node, Py_None)) == NULL) {
            goto done;
        }
        break;
    case E_Results:
        if (scan(node, common | BIT(E_MsgRef) | BIT(E_CmdRef) | BIT(E_Meta) | BIT(E_TargetRef)
                 | BIT(E_SourceRef), BIT(E_TargetRef) | BIT(E_SourceRef) | BIT(E_Item),
                 one, NULL) < 0
                || one[E_CmdID] == NULL || one[E_CmdRef] == NULL) {
            return NULL;
        }
        which = C_Results;
        n = 7;
        if ((values[0] = value(one[E_CmdID])) == NULL
                || (values[1] = optional(value, one[E_MsgRef])) == NULL
                || (values[2] = value(one[E_CmdRef])) == NULL
                || (values[3] = optional(map_meta, one[E_Meta])) == NULL
                || (values[4] = values_of(node, E_TargetRef)) == NULL
                || (values[5] = values_of(node, E_SourceRef)) == NULL) {
            goto done;
        }
        if ((values[6] = map_items_of(node, values[3])) == NULL) {
            goto done;
        }
        break;
    case E_Alert:
        if (scan(node, common | BIT(E_NoResp) | BIT(E_Cred) | BIT(E_Data) | BIT(E_Correlator),
                 BIT(E_Item), one, NULL) < 0 || one[E_CmdID] == NULL) {
            return NULL;
        }
        which = C_Alert;
        n = 6;
        if ((values[0] = value(one[E_CmdID])) == NULL) {
            goto done;
        }
        values[1] = one[E_NoResp] != NULL ? Py_True : Py_False;
        Py_INCREF(values[1]);
        if ((values[2] = optional_cred(one[E_Cred])) == NULL) {
            goto done;
        }
        if (one[E_Data] == NULL) {
            Py_INCREF(Py_None);
            values[3] = Py_None;
        }
        else if ((values[3] = number(one[E_Data])) == NULL) {
            goto done;
        }
        if ((values[4] = optional(value, one[E_Correlator])) == NULL
                || (values[5] = map_items(node, Py_None)) == NULL) {
            goto done;
        }
        break;
    case E_Add: case E_Replace: case E_Delete: case E_Copy: case E_Get: case E_Exec:
        if (scan(node, common | BIT(E_NoResp) | BIT(E_Cred) | BIT(E_Meta)
                 | (code == E_Exec ? BIT(E_Correlator) : 0), BIT(E_Item), one, NULL) < 0
                || one[E_CmdID] == NULL) {
            return NULL;
        }
        which = C_Add + (code - E_Add);
        n = code == E_Exec ? 6 : 5;
        if ((values[0] = value(one[E_CmdID])) == NULL) {
            goto done;
        }
        values[1] = one[E_NoResp] != NULL ? Py_True : Py_False;
        Py_INCREF(values[1]);
        if ((values[2] = optional_cred(one[E_Cred])) == NULL
                || (values[3] = optional(map_meta, one[E_Meta])) == NULL) {
            goto done;
        }
        if ((values[4] = map_items_of(node, values[3])) == NULL) {
            goto done;
        }
        if (code == E_Exec && (values[5] = optional(value, one[E_Correlator])) == NULL) {
            goto done;
        }
        break;
    case E_Atomic: case E_Sequence:
        /* the pure reader skips every CmdID, NoResp and Meta among the commands */
        if (depth >= MAX_NESTING
                || scan(node, BIT(E_CmdID) | BIT(E_NoResp) | BIT(E_Meta) | COMMANDS, COMMANDS, one,
                        NULL) < 0
                || one[E_CmdID] == NULL) {
            return NULL;
        }
        which = code == E_Atomic ? C_Atomic : C_Sequence;
        n = 4;
        if ((values[0] = value(one[E_CmdID])) == NULL) {
            goto done;
        }
        values[1] = one[E_NoResp] != NULL ? Py_True : Py_False;
        Py_INCREF(values[1]);
        if ((values[2] = optional(map_meta, one[E_Meta])) == NULL
                || (values[3] = map_commands(node, BIT(E_CmdID) | BIT(E_NoResp) | BIT(E_Meta),
                                             depth + 1, NULL)) == NULL) {
            goto done;
        }
        break;
    default:
        return NULL;
    }
    result = make(which, values);
done:
    release_all(values, n);
    return result;
}

static PyObject *
map_hdr(const TNode *node)
{
    const TNode *one[E_COUNT];
    if (scan(node, BIT(E_VerDTD) | BIT(E_VerProto) | BIT(E_SessionID) | BIT(E_MsgID)
             | BIT(E_Target) | BIT(E_Source) | BIT(E_RespURI) | BIT(E_NoResp) | BIT(E_Cred)
             | BIT(E_Meta), 0, one, NULL) < 0
            || one[E_VerDTD] == NULL || one[E_VerProto] == NULL || one[E_SessionID] == NULL
            || one[E_MsgID] == NULL || one[E_Target] == NULL || one[E_Source] == NULL) {
        return NULL;
    }
    PyObject *values[10] = {NULL};
    PyObject *result = NULL;
    if ((values[0] = value(one[E_SessionID])) != NULL
            && (values[1] = value(one[E_MsgID])) != NULL
            && (values[2] = map_locref(one[E_Target])) != NULL
            && (values[3] = map_locref(one[E_Source])) != NULL
            && (values[4] = value(one[E_VerDTD])) != NULL
            && (values[5] = value(one[E_VerProto])) != NULL
            && (values[6] = optional(value, one[E_RespURI])) != NULL
            && (values[7] = one[E_NoResp] != NULL ? Py_True : Py_False, Py_INCREF(values[7]), 1)
            && (values[8] = optional_cred(one[E_Cred])) != NULL
            && (values[9] = optional(map_meta, one[E_Meta])) != NULL) {
        result = make(C_SyncHdr, values);
    }
    for (int i = 0; i < 10; i++) {
        Py_XDECREF(values[i]);
    }
    return result;
}

/* The commands among the children of ``node`` (a new list), those with a
 * code in ``skip`` left out; with ``final``, whether one was Final. */
static PyObject *
map_commands(const TNode *node, uint64_t skip, int depth, int *final)
{
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    for (const TNode *child = node->child; child != NULL; child = child->next) {
        int code = child->code;
        if (code > 0 && (skip & BIT(code))) {
            if (final != NULL && code == E_Final) {
                *final = 1;
            }
            continue;
        }
        PyObject *command = code > 0 ? map_command(child, code, depth) : NULL;
        if (command == NULL || PyList_Append(list, command) < 0) {
            Py_XDECREF(command);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(command);
    }
    return list;
}

/* The SyncML model of the tree of a <SyncML> element, root; NULL (an error
 * may be set) for another shape */
static PyObject *
map_tree(const TNode *root)
{
    const TNode *one[E_COUNT];
    PyObject *values[4] = {NULL};
    PyObject *result = NULL;
    uint64_t seen;
    int final = 0;
    if (!M.ready || !classes_unchanged()
            || scan(root, BIT(E_SyncHdr) | BIT(E_SyncBody), 0, one, &seen) < 0
            || one[E_SyncHdr] == NULL || one[E_SyncBody] == NULL) {
        goto done;
    }
    if ((values[0] = map_hdr(one[E_SyncHdr])) == NULL
            || (values[1] = map_commands(one[E_SyncBody], BIT(E_Final), 0, &final)) == NULL) {
        goto done;
    }
    values[2] = final ? Py_True : Py_False;
    Py_INCREF(values[2]);
    if ((values[3] = PyList_New(0)) == NULL) {
        goto done;
    }
    result = make(C_SyncML, values);
done:
    release_all(values, 4);
    return result;
}

/* map_message(root): the SyncML model of a common message's Node tree, or None */
static PyObject *
map_message(PyObject *module, PyObject *root)
{
    (void)module;
    PyObject *result = NULL;
    Tree tree;
    tree_init(&tree);
    if (M.ready && code_of(root) >= 0
            && PyUnicode_Compare(SLOT(root, M.layout.name), M.root_name) == 0
            && tree_of_nodes(&tree, root) == 0) {
        result = map_tree(tree_root(&tree));
    }
    tree_free(&tree);
    if (result == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return result;
}

/* setup_mapping(node_cls, classes, settle): classes is a tuple of the model
 * classes in C_* order.  False (and map_message answers None) unless every
 * class is a plain type whose dataclass fields are the ones expected. */
static PyObject *
setup_mapping(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *node_cls, *classes, *settle;
    if (!PyArg_ParseTuple(args, "OO!O", &node_cls, &PyTuple_Type, &classes, &settle)) {
        return NULL;
    }
    M.ready = 0;
    if (node_layout(node_cls, &M.layout) < 0 || PyTuple_GET_SIZE(classes) != C_COUNT) {
        Py_RETURN_FALSE;
    }
    Py_INCREF(node_cls);  /* layout.type: a class freed while in use would be read by its slots */
    Py_XSETREF(M.node_cls, node_cls);
    if ((M.init_str == NULL && (M.init_str = PyUnicode_InternFromString("__init__")) == NULL)
            || (M.name_str == NULL && (M.name_str = PyUnicode_InternFromString("NAME")) == NULL)) {
        return NULL;
    }
    PyObject *codes = PyDict_New();
    if (codes == NULL) {
        return NULL;
    }
    for (int code = 1; code < E_COUNT; code++) {
        PyObject *name = PyUnicode_InternFromString(element_names[code]);
        PyObject *number = PyLong_FromLong(code);
        int failed = name == NULL || number == NULL || PyDict_SetItem(codes, name, number) < 0;
        Py_XDECREF(name);
        Py_XDECREF(number);
        if (failed) {
            Py_DECREF(codes);
            return NULL;
        }
    }
    Py_XSETREF(M.codes, codes);
    clear_code_cache();
    for (int which = 0; which < C_COUNT; which++) {
        PyObject *cls = PyTuple_GET_ITEM(classes, which);
        if (!PyType_Check(cls) || ((PyTypeObject *)cls)->tp_new != PyBaseObject_Type.tp_new) {
            Py_RETURN_FALSE;
        }
        PyObject *spelled = PyUnicode_FromString(class_fields[which]);
        PyObject *names = spelled ? PyUnicode_Split(spelled, NULL, -1) : NULL;
        Py_XDECREF(spelled);
        PyObject *fields = names ? PySequence_Tuple(names) : NULL;
        Py_XDECREF(names);
        if (fields == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fields); i++) {
            PyUnicode_InternInPlace(&PyTuple_GET_ITEM(fields, i));
        }
        Py_INCREF(cls);
        Py_XSETREF(M.cls[which], cls);
        Py_XSETREF(M.fields[which], fields);
        PyObject *dict = ((PyTypeObject *)cls)->tp_dict;
        PyObject *init = dict ? PyDict_GetItemWithError(dict, M.init_str) : NULL;
        PyObject *name = dict && which >= C_Status ? PyDict_GetItemWithError(dict, M.name_str)
                                                   : NULL;
        if (PyErr_Occurred()) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < MAX_FIELDS; i++) {
            PyObject *member = NULL;
            M.offset[which][i] = i < PyTuple_GET_SIZE(fields)
                ? field_slot((PyTypeObject *)cls, PyTuple_GET_ITEM(fields, i), &member) : 0;
            Py_XINCREF(member);
            Py_XSETREF(M.member[which][i], member);
        }
        Py_XINCREF(init);
        Py_XSETREF(M.init[which], init);
        Py_XINCREF(name);
        Py_XSETREF(M.name[which], name);
        M.tag[which] = 0;
    }
    Py_INCREF(settle);
    Py_XSETREF(M.settle, settle);
    if ((M.root_name == NULL && (M.root_name = PyUnicode_InternFromString("SyncML")) == NULL)
            || (M.chr == NULL && (M.chr = PyUnicode_InternFromString("chr")) == NULL)
            || (M.b64 == NULL && (M.b64 = PyUnicode_InternFromString("b64")) == NULL)
            || (M.sync_hdr == NULL && (M.sync_hdr = PyUnicode_InternFromString("SyncHdr")) == NULL)
            || (M.zero == NULL && (M.zero = PyUnicode_InternFromString("0")) == NULL)
            || (M.no_args == NULL && (M.no_args = PyTuple_New(0)) == NULL)) {
        return NULL;
    }
    if (setup_names() < 0) {
        return NULL;
    }
    setup_attr_slots();
    M.ready = 1;
    Py_RETURN_TRUE;
}

/* the field names map_message sets for each class, in C_* order (to check against the model) */
static PyObject *
mapping_fields(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    PyObject *out = PyTuple_New(C_COUNT);
    for (int which = 0; out != NULL && which < C_COUNT; which++) {
        PyObject *spelled = PyUnicode_FromString(class_fields[which]);
        PyObject *names = spelled ? PyUnicode_Split(spelled, NULL, -1) : NULL;
        Py_XDECREF(spelled);
        PyObject *fields = names ? PySequence_Tuple(names) : NULL;
        Py_XDECREF(names);
        if (fields == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, which, fields);
    }
    return out;
}


/* -- the model -> pieces writer (model_writer.write) -------------------------
 *
 * write_model(msg, tables) appends the same fragments as model_writer.write
 * (a value element's start, text and end as three pieces where write may
 * join them in one: the same string once joined) and answers (pieces, ends),
 * ends being where a Meta with children ended (None for XML), or None for
 * anything write alone handles or refuses: a class other than the model's
 * own, a value of another type, a name
 * without fragments, a text the dialect's text function refuses, Meta
 * extras, embedded markup, lists that are not lists, Atomic and Sequence
 * nested deeper than MAX_NESTING.  ``tables`` is
 * Dialect.c_tables.
 */

typedef struct {
    PyObject *out, *ends;
    PyObject *root_open, *open, *close, *empty, *leaf, *meta_open, *meta_empty, *meta_leaf;
    PyObject *text, *data_bytes;
} Writer;

/* interned names: elements (element_names) and model fields */
enum {
    A_hdr, A_body, A_final, A_session_id, A_msg_id, A_target, A_source, A_ver_dtd, A_ver_proto,
    A_resp_uri, A_no_resp, A_cred, A_meta, A_loc_uri, A_loc_name, A_data, A_type, A_format,
    A_mark, A_size, A_next_nonce, A_max_msg_size, A_max_obj_size, A_version, A_emi, A_extra,
    A_more_data, A_cmd_id, A_msg_ref, A_cmd_ref, A_cmd, A_target_refs, A_source_refs, A_chal,
    A_items, A_correlator, A_commands, A_COUNT
};
static const char *const attr_names[A_COUNT] = {
    "hdr", "body", "final", "session_id", "msg_id", "target", "source", "ver_dtd", "ver_proto",
    "resp_uri", "no_resp", "cred", "meta", "loc_uri", "loc_name", "data", "type", "format",
    "mark", "size", "next_nonce", "max_msg_size", "max_obj_size", "version", "emi", "extra",
    "more_data", "cmd_id", "msg_ref", "cmd_ref", "cmd", "target_refs", "source_refs", "chal",
    "items", "correlator", "commands",
};
static PyObject *A[A_COUNT];
static PyObject *N[E_COUNT];   /* element names */
static PyObject *N_SyncML, *N_EMI;

static int
setup_names(void)
{
    for (int i = 0; i < A_COUNT; i++) {
        if (A[i] == NULL && (A[i] = PyUnicode_InternFromString(attr_names[i])) == NULL) {
            return -1;
        }
    }
    for (int i = 1; i < E_COUNT; i++) {
        if (N[i] == NULL && (N[i] = PyUnicode_InternFromString(element_names[i])) == NULL) {
            return -1;
        }
    }
    if ((N_SyncML == NULL && (N_SyncML = PyUnicode_InternFromString("SyncML")) == NULL)
            || (N_EMI == NULL && (N_EMI = PyUnicode_InternFromString("EMI")) == NULL)) {
        return -1;
    }
    return 0;
}

static int
add(Writer *w, PyObject *piece)
{
    return PyList_Append(w->out, piece);
}

/* table[name] appended; -1 if it has none */
static int
add_from(Writer *w, PyObject *table, PyObject *name)
{
    PyObject *piece = PyDict_GetItemWithError(table, name);  /* borrowed */
    return piece == NULL ? -1 : add(w, piece);
}

/* where field A[which] of each model class lives when it is a slot (0: read
 * through the attribute protocol); set by setup_attr_slots */
static Py_ssize_t attr_offset[C_COUNT][A_COUNT];

static void
setup_attr_slots(void)
{
    for (int which = 0; which < C_COUNT; which++) {
        PyObject *names = M.fields[which];
        for (int a = 0; a < A_COUNT; a++) {
            attr_offset[which][a] = 0;
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
                if (PyTuple_GET_ITEM(names, i) == A[a]) {  /* both interned */
                    attr_offset[which][a] = M.offset[which][i];
                }
            }
        }
    }
}

/* the attribute, a new reference (NULL: none); a model object's field from
 * its slot (write_model checked its class is as set up), else by getattr */
static PyObject *
attr(PyObject *obj, int which)
{
    PyTypeObject *type = Py_TYPE(obj);
    for (int c = 0; c < C_COUNT; c++) {
        if (type == (PyTypeObject *)M.cls[c]) {
            Py_ssize_t offset = attr_offset[c][which];
            PyObject *value = offset != 0 ? SLOT(obj, offset) : NULL;
            if (value != NULL) {
                Py_INCREF(value);
                return value;
            }
            break;
        }
    }
    return PyObject_GetAttr(obj, A[which]);
}

/* a non-empty text as the dialect writes it: plain printable ASCII without
 * & < > as it is, anything else through the dialect's text function */
static PyObject *
text_piece(Writer *w, PyObject *text)
{
    if (PyUnicode_IS_ASCII(text)) {
        const Py_UCS1 *s = PyUnicode_1BYTE_DATA(text);
        Py_ssize_t n = PyUnicode_GET_LENGTH(text), i = 0;
        while (i < n && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '&' && s[i] != '<' && s[i] != '>') {
            i++;
        }
        if (i == n) {
            Py_INCREF(text);
            return text;
        }
    }
    return PyObject_CallOneArg(w->text, text);
}

/* before + text + after from leaf[name], or empty[name] for "" */
static int
leaf(Writer *w, PyObject *leaves, PyObject *empties, PyObject *name, PyObject *text)
{
    if (PyUnicode_GET_LENGTH(text) == 0) {
        return add_from(w, empties, name);
    }
    PyObject *pair = PyDict_GetItemWithError(leaves, name);  /* borrowed */
    if (pair == NULL || !PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
        return -1;
    }
    PyObject *piece = text_piece(w, text);
    if (piece == NULL) {
        return -1;
    }
    int failed = add(w, PyTuple_GET_ITEM(pair, 0)) < 0 || add(w, piece) < 0
        || add(w, PyTuple_GET_ITEM(pair, 1)) < 0;
    Py_DECREF(piece);
    return failed ? -1 : 0;
}

/* _value: a required text element */
static int
w_value(Writer *w, int code, PyObject *value)
{
    if (value == NULL || !PyUnicode_CheckExact(value)) {
        return -1;
    }
    return leaf(w, w->leaf, w->empty, N[code], value);
}

/* _value of attribute ``which`` of ``obj``; None skipped if ``optional`` */
static int
w_attr_value(Writer *w, int code, PyObject *obj, int which, int optional)
{
    PyObject *value = attr(obj, which);
    if (value == NULL) {
        return -1;
    }
    int result = optional && value == Py_None ? 0 : w_value(w, code, value);
    Py_DECREF(value);
    return result;
}

/* a non-negative exact int as str, a new reference */
static PyObject *
int_text(PyObject *value)
{
    if (!PyLong_CheckExact(value)) {
        return NULL;
    }
    int overflow;
    long long small = PyLong_AsLongLongAndOverflow(value, &overflow);  /* sets no error for an int */
    if (overflow < 0 || (overflow == 0 && small < 0)) {
        return NULL;
    }
    return PyObject_Str(value);
}

static int
w_int(Writer *w, int code, PyObject *value)
{
    PyObject *text = int_text(value);
    if (text == NULL) {
        return -1;
    }
    PyObject *pair = PyDict_GetItemWithError(w->leaf, N[code]);
    int failed = pair == NULL || !PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2
        || add(w, PyTuple_GET_ITEM(pair, 0)) < 0 || add(w, text) < 0
        || add(w, PyTuple_GET_ITEM(pair, 1)) < 0;
    Py_DECREF(text);
    return failed ? -1 : 0;
}

/* attribute ``which`` is true; -1 on error */
static int
attr_true(PyObject *obj, int which)
{
    PyObject *value = attr(obj, which);
    if (value == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

static int
w_locref(Writer *w, int code, PyObject *ref)
{
    if (!Py_IS_TYPE(ref, (PyTypeObject *)M.cls[C_LocRef])) {
        return -1;
    }
    if (add_from(w, w->open, N[code]) < 0 || w_attr_value(w, E_LocURI, ref, A_loc_uri, 0) < 0
            || w_attr_value(w, E_LocName, ref, A_loc_name, 1) < 0) {
        return -1;
    }
    return add_from(w, w->close, N[code]);
}

static int
w_meta(Writer *w, PyObject *meta)
{
    static const int fields[8] = {A_format, A_type, A_mark, A_size, A_version, A_next_nonce,
                                  A_max_msg_size, A_max_obj_size};
    static const int codes[8] = {E_Format, E_Type, E_Mark, E_Size, E_Version, E_NextNonce,
                                 E_MaxMsgSize, E_MaxObjSize};
    static const int ints[8] = {0, 0, 0, 1, 0, 0, 1, 1};
    if (!Py_IS_TYPE(meta, (PyTypeObject *)M.cls[C_Meta]) || attr_true(meta, A_extra) != 0) {
        return -1;
    }
    Py_ssize_t start = PyList_GET_SIZE(w->out);
    if (add(w, w->meta_open) < 0) {
        return -1;
    }
    for (int i = 0; i < 8; i++) {
        PyObject *value = attr(meta, fields[i]);
        if (value == NULL) {
            return -1;
        }
        if (value == Py_None) {
            Py_DECREF(value);
            continue;
        }
        PyObject *text = ints[i] ? int_text(value)
            : PyUnicode_CheckExact(value) ? (Py_INCREF(value), value) : NULL;
        Py_DECREF(value);
        if (text == NULL) {
            return -1;
        }
        int failed = leaf(w, w->meta_leaf, w->meta_empty, N[codes[i]], text);
        Py_DECREF(text);
        if (failed) {
            return -1;
        }
    }
    PyObject *emi = attr(meta, A_emi);
    if (emi == NULL) {
        return -1;
    }
    if (!PyList_CheckExact(emi)) {
        Py_DECREF(emi);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(emi); i++) {
        PyObject *value = PyList_GET_ITEM(emi, i);
        if (!PyUnicode_CheckExact(value)
                || leaf(w, w->meta_leaf, w->meta_empty, N_EMI, value) < 0) {
            Py_DECREF(emi);
            return -1;
        }
    }
    Py_DECREF(emi);
    if (PyList_GET_SIZE(w->out) == start + 1) {
        PyObject *piece = PyDict_GetItemWithError(w->empty, N[E_Meta]);
        if (piece == NULL) {
            return -1;
        }
        Py_INCREF(piece);
        return PyList_SetItem(w->out, start, piece);
    }
    if (add_from(w, w->close, N[E_Meta]) < 0) {
        return -1;
    }
    if (w->ends != Py_None) {
        PyObject *end = PyLong_FromSsize_t(PyList_GET_SIZE(w->out));
        int failed = end == NULL || PyList_Append(w->ends, end) < 0;
        Py_XDECREF(end);
        return failed ? -1 : 0;
    }
    return 0;
}

/* attribute ``which`` written by ``write`` unless None */
static int
w_optional(Writer *w, PyObject *obj, int which, int (*write)(Writer *, PyObject *))
{
    PyObject *value = attr(obj, which);
    if (value == NULL) {
        return -1;
    }
    int result = value == Py_None ? 0 : write(w, value);
    Py_DECREF(value);
    return result;
}

static int
w_cred(Writer *w, PyObject *cred)
{
    if (!Py_IS_TYPE(cred, (PyTypeObject *)M.cls[C_Cred])) {
        return -1;
    }
    if (add_from(w, w->open, N[E_Cred]) < 0 || w_optional(w, cred, A_meta, w_meta) < 0
            || w_attr_value(w, E_Data, cred, A_data, 0) < 0) {
        return -1;
    }
    return add_from(w, w->close, N[E_Cred]);
}

static int
w_target(Writer *w, PyObject *ref)
{
    return w_locref(w, E_Target, ref);
}

static int
w_source(Writer *w, PyObject *ref)
{
    return w_locref(w, E_Source, ref);
}

/* one Item of w_items (held by the caller) */
static int
w_item(Writer *w, PyObject *item)
{
    Py_ssize_t start = PyList_GET_SIZE(w->out);
    if (add_from(w, w->open, N[E_Item]) < 0 || w_optional(w, item, A_target, w_target) < 0
            || w_optional(w, item, A_source, w_source) < 0
            || w_optional(w, item, A_meta, w_meta) < 0) {
        return -1;
    }
    PyObject *data = attr(item, A_data);
    if (data == NULL) {
        return -1;
    }
    int failed = 0;
    if (PyUnicode_CheckExact(data)) {
        failed = w_value(w, E_Data, data) < 0;
    }
    else if (PyBytes_CheckExact(data)) {
        PyObject *done = PyObject_CallFunctionObjArgs(w->data_bytes, w->out, data, NULL);
        failed = done == NULL;
        Py_XDECREF(done);
    }
    else if (data != Py_None) {
        failed = 1;  /* embedded markup, or a type write refuses */
    }
    Py_DECREF(data);
    if (failed) {
        return -1;
    }
    int more = attr_true(item, A_more_data);
    if (more < 0 || (more && add_from(w, w->empty, N[E_MoreData]) < 0)) {
        return -1;
    }
    if (PyList_GET_SIZE(w->out) == start + 1) {
        PyObject *piece = PyDict_GetItemWithError(w->empty, N[E_Item]);
        if (piece == NULL) {
            return -1;
        }
        Py_INCREF(piece);
        return PyList_SetItem(w->out, start, piece);
    }
    return add_from(w, w->close, N[E_Item]);
}

static int
w_items(Writer *w, PyObject *obj)
{
    PyObject *items = attr(obj, A_items);
    if (items == NULL) {
        return -1;
    }
    int failed = !PyList_CheckExact(items);
    for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (!Py_IS_TYPE(item, (PyTypeObject *)M.cls[C_Item])) {
            failed = 1;
            break;
        }
        Py_INCREF(item);  /* held: reading its attributes may run code (a property) */
        failed = w_item(w, item) < 0;
        Py_DECREF(item);
    }
    Py_DECREF(items);
    return failed ? -1 : 0;
}

/* each str of list attribute ``which`` as element ``code`` */
static int
w_values(Writer *w, int code, PyObject *obj, int which)
{
    PyObject *values = attr(obj, which);
    if (values == NULL) {
        return -1;
    }
    int failed = !PyList_CheckExact(values);
    for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(values); i++) {
        failed = w_value(w, code, PyList_GET_ITEM(values, i)) < 0;
    }
    Py_DECREF(values);
    return failed ? -1 : 0;
}

static int
w_no_resp(Writer *w, PyObject *obj)
{
    int truth = attr_true(obj, A_no_resp);
    return truth < 0 ? -1 : truth ? add_from(w, w->empty, N[E_NoResp]) : 0;
}

static int
w_chal(Writer *w, PyObject *chal)
{
    if (!Py_IS_TYPE(chal, (PyTypeObject *)M.cls[C_Chal])) {
        return -1;
    }
    PyObject *meta = attr(chal, A_meta);
    if (meta == NULL) {
        return -1;
    }
    int failed = add_from(w, w->open, N[E_Chal]) < 0 || w_meta(w, meta) < 0
        || add_from(w, w->close, N[E_Chal]) < 0;
    Py_DECREF(meta);
    return failed ? -1 : 0;
}

static int w_commands(Writer *w, PyObject *obj, int which, int depth);

static int
w_command(Writer *w, PyObject *cmd, int depth)
{
    PyTypeObject *type = Py_TYPE(cmd);
    int which = -1;
    for (int c = C_Status; c < C_COUNT; c++) {
        if (type == (PyTypeObject *)M.cls[c]) {
            which = c;
            break;
        }
    }
    if (which < 0 || depth >= MAX_NESTING) {
        return -1;  /* UnknownCommand, a subclass, not a command: write's */
    }
    int code = class_element[which];
    if (add_from(w, w->open, N[code]) < 0 || w_attr_value(w, E_CmdID, cmd, A_cmd_id, 0) < 0) {
        return -1;
    }
    switch (which) {
    case C_Status: {
        if (w_attr_value(w, E_MsgRef, cmd, A_msg_ref, 1) < 0
                || w_attr_value(w, E_CmdRef, cmd, A_cmd_ref, 0) < 0
                || w_attr_value(w, E_Cmd, cmd, A_cmd, 0) < 0
                || w_values(w, E_TargetRef, cmd, A_target_refs) < 0
                || w_values(w, E_SourceRef, cmd, A_source_refs) < 0
                || w_optional(w, cmd, A_cred, w_cred) < 0
                || w_optional(w, cmd, A_chal, w_chal) < 0) {
            return -1;
        }
        PyObject *data = attr(cmd, A_data);
        int failed = data == NULL || w_int(w, E_Data, data) < 0;
        Py_XDECREF(data);
        if (failed || w_items(w, cmd) < 0) {
            return -1;
        }
        break;
    }
    case C_Results:
        if (w_attr_value(w, E_MsgRef, cmd, A_msg_ref, 1) < 0
                || w_attr_value(w, E_CmdRef, cmd, A_cmd_ref, 0) < 0
                || w_optional(w, cmd, A_meta, w_meta) < 0
                || w_values(w, E_TargetRef, cmd, A_target_refs) < 0
                || w_values(w, E_SourceRef, cmd, A_source_refs) < 0
                || w_items(w, cmd) < 0) {
            return -1;
        }
        break;
    case C_Alert: {
        if (w_no_resp(w, cmd) < 0 || w_optional(w, cmd, A_cred, w_cred) < 0) {
            return -1;
        }
        PyObject *data = attr(cmd, A_data);
        int failed = data == NULL || (data != Py_None && w_int(w, E_Data, data) < 0);
        Py_XDECREF(data);
        if (failed || w_attr_value(w, E_Correlator, cmd, A_correlator, 1) < 0
                || w_items(w, cmd) < 0) {
            return -1;
        }
        break;
    }
    case C_Atomic: case C_Sequence:
        if (w_no_resp(w, cmd) < 0 || w_optional(w, cmd, A_meta, w_meta) < 0
                || w_commands(w, cmd, A_commands, depth + 1) < 0) {
            return -1;
        }
        break;
    default:
        if (w_no_resp(w, cmd) < 0 || w_optional(w, cmd, A_cred, w_cred) < 0
                || w_optional(w, cmd, A_meta, w_meta) < 0
                || (which == C_Exec && w_attr_value(w, E_Correlator, cmd, A_correlator, 1) < 0)
                || w_items(w, cmd) < 0) {
            return -1;
        }
    }
    return add_from(w, w->close, N[code]);
}

/* the commands of list attribute ``which`` of ``obj`` */
static int
w_commands(Writer *w, PyObject *obj, int which, int depth)
{
    PyObject *commands = attr(obj, which);
    if (commands == NULL) {
        return -1;
    }
    int failed = !PyList_CheckExact(commands);
    for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(commands); i++) {
        PyObject *cmd = PyList_GET_ITEM(commands, i);
        Py_INCREF(cmd);  /* held: reading its attributes may run code (a property) */
        failed = w_command(w, cmd, depth) < 0;
        Py_DECREF(cmd);
    }
    Py_DECREF(commands);
    return failed ? -1 : 0;
}

static int
w_hdr(Writer *w, PyObject *hdr)
{
    if (!Py_IS_TYPE(hdr, (PyTypeObject *)M.cls[C_SyncHdr])) {
        return -1;
    }
    PyObject *target = NULL, *source = NULL;
    int failed = add_from(w, w->open, N[E_SyncHdr]) < 0
        || w_attr_value(w, E_VerDTD, hdr, A_ver_dtd, 0) < 0
        || w_attr_value(w, E_VerProto, hdr, A_ver_proto, 0) < 0
        || w_attr_value(w, E_SessionID, hdr, A_session_id, 0) < 0
        || w_attr_value(w, E_MsgID, hdr, A_msg_id, 0) < 0
        || (target = attr(hdr, A_target)) == NULL || w_locref(w, E_Target, target) < 0
        || (source = attr(hdr, A_source)) == NULL || w_locref(w, E_Source, source) < 0
        || w_attr_value(w, E_RespURI, hdr, A_resp_uri, 1) < 0
        || w_no_resp(w, hdr) < 0
        || w_optional(w, hdr, A_cred, w_cred) < 0
        || w_optional(w, hdr, A_meta, w_meta) < 0
        || add_from(w, w->close, N[E_SyncHdr]) < 0;
    Py_XDECREF(target);
    Py_XDECREF(source);
    return failed ? -1 : 0;
}

static PyObject *
write_model(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *msg, *tables, *meta_switch;
    Writer w = {NULL};
    if (!PyArg_ParseTuple(args, "OO!", &msg, &PyTuple_Type, &tables)) {
        return NULL;
    }
    if (!M.ready || PyTuple_GET_SIZE(tables) != 11
            || !Py_IS_TYPE(msg, (PyTypeObject *)M.cls[C_SyncML]) || !classes_unchanged()) {
        Py_RETURN_NONE;
    }
    w.root_open = PyTuple_GET_ITEM(tables, 0);
    w.open = PyTuple_GET_ITEM(tables, 1);
    w.close = PyTuple_GET_ITEM(tables, 2);
    w.empty = PyTuple_GET_ITEM(tables, 3);
    w.leaf = PyTuple_GET_ITEM(tables, 4);
    w.meta_open = PyTuple_GET_ITEM(tables, 5);
    w.meta_empty = PyTuple_GET_ITEM(tables, 6);
    w.meta_leaf = PyTuple_GET_ITEM(tables, 7);
    w.text = PyTuple_GET_ITEM(tables, 8);
    w.data_bytes = PyTuple_GET_ITEM(tables, 9);
    meta_switch = PyTuple_GET_ITEM(tables, 10);
    if (!PyDict_Check(w.open) || !PyDict_Check(w.close) || !PyDict_Check(w.empty)
            || !PyDict_Check(w.leaf) || !PyDict_Check(w.meta_empty) || !PyDict_Check(w.meta_leaf)) {
        Py_RETURN_NONE;
    }
    int switches = PyObject_IsTrue(meta_switch);
    w.out = PyList_New(0);
    w.ends = switches > 0 ? PyList_New(0) : (Py_INCREF(Py_None), Py_None);
    PyObject *hdr = NULL, *result = NULL;
    if (switches < 0 || w.out == NULL || w.ends == NULL || add(&w, w.root_open) < 0
            || (hdr = attr(msg, A_hdr)) == NULL || w_hdr(&w, hdr) < 0) {
        goto done;
    }
    Py_ssize_t open_at = PyList_GET_SIZE(w.out);
    if (add_from(&w, w.open, N[E_SyncBody]) < 0 || w_commands(&w, msg, A_body, 0) < 0) {
        goto done;
    }
    int final = attr_true(msg, A_final);
    if (final < 0 || (final && add_from(&w, w.empty, N[E_Final]) < 0)) {
        goto done;
    }
    if (PyList_GET_SIZE(w.out) == open_at + 1) {
        PyObject *piece = PyDict_GetItemWithError(w.empty, N[E_SyncBody]);
        if (piece == NULL) {
            goto done;
        }
        Py_INCREF(piece);
        if (PyList_SetItem(w.out, open_at, piece) < 0) {
            goto done;
        }
    }
    else if (add_from(&w, w.close, N[E_SyncBody]) < 0) {
        goto done;
    }
    if (add_from(&w, w.close, N_SyncML) < 0) {
        goto done;
    }
    result = PyTuple_Pack(2, w.out, w.ends);
done:
    Py_XDECREF(hdr);
    Py_XDECREF(w.out);
    Py_XDECREF(w.ends);
    if (result == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return result;
}

#endif
