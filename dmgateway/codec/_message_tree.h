/* The tree map_message reads: one struct per element in one array, made
 * either from a Node tree (tree_of_nodes) or by a C reader straight from the
 * wire (_xml_tree.h), so that a message the C reader reads is mapped to the
 * model without a Node, a children list or a text str for an element the
 * model does not keep.
 *
 * Included by _model_mapping.h, which defines the element codes (E_*).
 */
#ifndef DMGW_MESSAGE_TREE_H
#define DMGW_MESSAGE_TREE_H

typedef struct TNode {
    int code;                       /* E_*; E_OTHER for any other name */
    Py_ssize_t count;               /* children */
    const struct TNode *child;      /* the first child, then each one's next */
    const struct TNode *next;
    Py_ssize_t first_at, last_at, next_at;  /* the same as indices while the tree grows (-1: none) */
    /* the text: a Node's (a strong reference, never None), or bytes a C reader
     * read (ASCII, len of them at chars), or neither (None); len -1: a Node
     * whose text slot is empty, which no mapping reads */
    PyObject *text;
    const char *chars;
    Py_ssize_t len;
} TNode;

#define TREE_LOCAL 128  /* nodes held without a heap array (a DM message has ~50) */

typedef struct {
    TNode *nodes;                   /* local, or a heap array */
    Py_ssize_t count, cap;
    TNode local[TREE_LOCAL];
} Tree;

static void
tree_init(Tree *t)
{
    t->nodes = t->local;
    t->count = 0;
    t->cap = TREE_LOCAL;
}

static void
tree_free(Tree *t)
{
    for (Py_ssize_t i = 0; i < t->count; i++) {
        Py_XDECREF(t->nodes[i].text);
    }
    if (t->nodes != t->local) {
        PyMem_Free(t->nodes);
    }
    t->nodes = t->local;
    t->count = 0;
}

/* A new element coded ``code``, the last child of element ``parent`` (-1:
 * the root), without text; its index, or -1 when memory ran out. */
static Py_ssize_t
tree_add(Tree *t, int code, Py_ssize_t parent)
{
    if (t->count == t->cap) {
        if (t->cap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(TNode) / 2) {
            return -1;
        }
        Py_ssize_t cap = t->cap * 2;
        TNode *nodes = t->nodes == t->local ? PyMem_Malloc((size_t)cap * sizeof(TNode))
                                            : PyMem_Realloc(t->nodes, (size_t)cap * sizeof(TNode));
        if (nodes == NULL) {
            return -1;
        }
        if (t->nodes == t->local) {
            memcpy(nodes, t->local, sizeof(t->local));
        }
        t->nodes = nodes;
        t->cap = cap;
    }
    Py_ssize_t at = t->count++;
    TNode *n = &t->nodes[at];
    n->code = code;
    n->count = 0;
    n->first_at = n->last_at = n->next_at = -1;
    n->text = NULL;
    n->chars = NULL;
    n->len = 0;
    if (parent >= 0) {
        TNode *p = &t->nodes[parent];
        if (p->last_at < 0) {
            p->first_at = at;
        }
        else {
            t->nodes[p->last_at].next_at = at;
        }
        p->last_at = at;
        p->count++;
    }
    return at;
}

/* The links as pointers, once the array no longer moves; the root. */
static const TNode *
tree_root(Tree *t)
{
    TNode *nodes = t->nodes;
    for (Py_ssize_t i = 0; i < t->count; i++) {
        nodes[i].child = nodes[i].first_at < 0 ? NULL : &nodes[nodes[i].first_at];
        nodes[i].next = nodes[i].next_at < 0 ? NULL : &nodes[nodes[i].next_at];
    }
    return t->count ? &nodes[0] : NULL;
}

#endif
