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
slot_offset(PyTypeObject *type, const char *slot, Py_ssize_t *offset)
{
    PyObject *descr = PyDict_GetItemString(type->tp_dict, slot);  /* borrowed */
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

static int
node_layout(PyObject *cls, NodeLayout *layout)
{
    if (!PyType_Check(cls)) {
        return -1;
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    if (type->tp_dict == NULL || type->tp_alloc == NULL) {
        return -1;
    }
    layout->type = type;
    if (slot_offset(type, "name", &layout->name) || slot_offset(type, "ns", &layout->ns)
            || slot_offset(type, "children", &layout->children)
            || slot_offset(type, "text", &layout->text)
            || slot_offset(type, "attrs", &layout->attrs)) {
        return -1;
    }
    return 0;
}

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

#endif
