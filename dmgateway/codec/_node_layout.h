/* Where a codec Node keeps its five slots (name, ns, children, text, attrs),
 * shared by the optional C accelerators (_wbxml_speedups.c, _xml_speedups.c).
 * Include after Python.h and structmember.h.
 */
#ifndef DMGW_NODE_LAYOUT_H
#define DMGW_NODE_LAYOUT_H

/* Node slot offsets, found from the class's member descriptors */
typedef struct {
    PyTypeObject *type;
    Py_ssize_t name, ns, children, text, attrs;
} NodeLayout;

static int
slot_offset(PyTypeObject *type, PyObject *slot, Py_ssize_t *offset)
{
    PyObject *descr = PyDict_GetItemWithError(type->tp_dict, slot);  /* borrowed */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || member->offset < (Py_ssize_t)sizeof(PyObject)
            || member->offset > type->tp_basicsize - (Py_ssize_t)sizeof(PyObject *)) {
        return -1;
    }
    *offset = member->offset;
    return 0;
}

/* The slot offsets of Node class cls, read from its member descriptors at
 * each call (the slot names are made once: a str made from a C string at each
 * call, and hashed, cost more than the rest of a small document's reading);
 * -1, no error set, for a class that is not laid out so */
static int
node_layout(PyObject *cls, NodeLayout *layout)
{
    static PyObject *slots[5];  /* "name", "ns", "children", "text", "attrs", interned */
    static const char *const spelled[5] = {"name", "ns", "children", "text", "attrs"};
    if (!PyType_Check(cls)) {
        return -1;
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    if (type->tp_dict == NULL || type->tp_alloc == NULL) {
        return -1;
    }
    for (int i = 0; i < 5; i++) {
        if (slots[i] == NULL && (slots[i] = PyUnicode_InternFromString(spelled[i])) == NULL) {
            PyErr_Clear();
            return -1;
        }
    }
    layout->type = type;
    if (slot_offset(type, slots[0], &layout->name) || slot_offset(type, slots[1], &layout->ns)
            || slot_offset(type, slots[2], &layout->children)
            || slot_offset(type, slots[3], &layout->text)
            || slot_offset(type, slots[4], &layout->attrs)) {
        PyErr_Clear();
        return -1;
    }
    return 0;
}

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

#endif
