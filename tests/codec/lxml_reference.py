"""The libxml2 (lxml) XML reader that :mod:`dmgateway.codec.xml_reader`
replaced, kept as the oracle of the differential tests: the same node trees
and the same accept / refuse decisions, document by document.  Never used by
the gateway (libxml2 keeps every name it has parsed for the life of the
process, see ``test_xml_reader.py``)."""

import threading

from lxml import etree

from dmgateway.codec.element import NS_SYNCML, Node
from dmgateway.codec.errors import LimitExceeded, XMLCodecError
from dmgateway.codec.xml import MAX_DEPTH, MAX_SIZE
from dmgateway.codec.xml_reader import ROOT_KEYS as _ROOT_KEYS
from dmgateway.codec.xml_reader import key_for_uri as _key_for_uri


def _parser():
    # collect_ids stays at its default: turning it off makes libxml2 try to
    # load the external DTD subset.
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        strip_cdata=True,
    )


class _Parsers(threading.local):
    """One parser per thread: lxml parsers may be reused, not shared."""

    def __init__(self):
        self.parser = _parser()


_PARSERS = _Parsers()


def parse(data, *, max_size=MAX_SIZE, max_depth=MAX_DEPTH, max_elements=None):
    """Read an XML document into a :class:`Node` tree."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise XMLCodecError("XML input must be bytes, not %s" % (type(data).__name__,))
    data = bytes(data)
    if len(data) > max_size:
        raise XMLCodecError("document of %d bytes exceeds the limit of %d" % (len(data), max_size))
    if not data.strip():
        raise XMLCodecError("empty document", offset=0)
    try:
        root = etree.fromstring(data, _PARSERS.parser)
    except (etree.LxmlError, ValueError, LookupError) as e:
        raise XMLCodecError("not well-formed XML: %s" % (e,)) from None
    # lxml raises for a parse only by its last message: an unbound prefix
    # followed by a mere warning (a relative namespace URI) went through
    for entry in _PARSERS.parser.error_log:
        if entry.type_name == "NS_ERR_UNDEFINED_NAMESPACE":
            raise XMLCodecError("not well-formed XML: %s" % (entry.message,))
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and (any(True for _ in dtd.iterentities())
                            or any(True for _ in dtd.iterelements())):
        raise XMLCodecError("DTD declarations are not allowed")
    if max_elements is None:
        return _convert(root, max_depth, None)
    # The elements are counted as they are converted, and the limit comes
    # before any other finding: a document over it raises LimitExceeded
    # whatever else is wrong with it, as when it was counted first.
    try:
        return _convert(root, max_depth, max_elements)
    except LimitExceeded:
        raise
    except XMLCodecError:
        _check_count(root, max_elements)
        raise


def _check_count(root, max_elements):
    """Raise LimitExceeded when the document has more than ``max_elements`` elements."""
    count = int(root.xpath("count(//*)"))
    if count > max_elements:
        raise LimitExceeded("%d elements, more than the %d allowed" % (count, max_elements))


_new_node = object.__new__  # the converter sets all five slots of a Node

# lxml tag -> (local name, namespace key), by the parent's namespace key: the
# same few dozen names in every message.  Bounded in entries AND characters,
# for all keys together: the cache lives as long as the process and peers not
# yet authenticated choose the names (up to 50,000 characters each, with
# namespace URIs as long).  Past the bounds names are resolved each time.
_NAMES = {}
_MAX_NAMES = 4096  # names held, every namespace key together
_MAX_NAME_CHARS = 128  # a longer tag (or namespace key) is never held
_names_free = [_MAX_NAMES]


def _convert(root, max_depth, max_elements):
    """Turn the lxml tree into Nodes, iteratively, checking depth and content.

    Past ``max_elements`` elements (None: no limit) :func:`_check_count`
    raises LimitExceeded.  Hot path: element paths (for error messages only)
    are kept as linked tuples and joined only when an error is raised.
    """
    tag = _qname(root, "")
    key = _key_for_uri(tag.namespace, _ROOT_KEYS.get(tag.localname, NS_SYNCML))
    top = Node(tag.localname, key, None, None, _attrs(root))
    stack = [(root, top, (None, tag.localname), 1)]
    pop, push = stack.pop, stack.append
    new, node_cls, cache = _new_node, Node, _NAMES
    # elements left before the limit, the root counted (-1: no limit)
    room = max_elements if max_elements is not None else -1
    if not room:
        _check_count(root, max_elements)
    while stack:
        element, node, chain, depth = pop()
        if depth > max_depth:
            raise XMLCodecError("nesting deeper than %d elements" % (max_depth,), path=_path(chain))
        if not len(element):
            node.text = element.text or None
            continue
        text = element.text
        if text and text.strip(" \t\r\n"):
            raise XMLCodecError("mixed text and element content", path=_path(chain))
        append = node.children.append
        inherited = node.ns
        names = cache.get(inherited)
        free = _names_free
        if names is None:
            names = {}
            if len(cache) < 64 and (inherited is None or len(inherited) <= _MAX_NAME_CHARS):
                cache[inherited] = names  # namespace keys: a few, unless a peer invents URIs
            else:
                free = [_MAX_NAMES]  # names of this element's children only, not held
        leaves_here = depth < max_depth  # a leaf child is complete at once
        for child in element:
            name = child.tag
            found = names.get(name)
            if found is None:
                if name.__class__ is not str:
                    raise XMLCodecError("entity references are not allowed", path=_path(chain))
                if name[0] == "{":
                    uri, _, local = name[1:].partition("}")
                else:
                    uri, local = None, name
                found = (local, _key_for_uri(uri, inherited))
                if len(name) <= _MAX_NAME_CHARS and free[0] > 0:
                    names[name] = found
                    free[0] -= 1
            local, ns = found
            tail = child.tail
            if tail and tail.strip(" \t\r\n"):
                raise XMLCodecError("mixed text and element content", path=_path(chain))
            room -= 1
            if not room:
                _check_count(root, max_elements)  # raises: counts the whole document
            sub = new(node_cls)
            sub.name = local
            sub.ns = ns
            sub.children = []
            sub.attrs = _attrs(child) if child.keys() else None
            append(sub)
            if leaves_here and not len(child):
                sub.text = child.text or None
            else:
                sub.text = None
                push((child, sub, (chain, local), depth + 1))
    return top


def _path(chain):
    names = []
    while chain is not None:
        chain, name = chain
        names.append(str(name))
    return "/".join(reversed(names))


def _qname(element, path):
    try:
        return etree.QName(element)
    except ValueError:
        raise XMLCodecError("invalid element name", path=path) from None


def _attrs(element):
    """Plain (un-namespaced) attributes; ``xmlns`` declarations are not attributes."""
    attrs = {name: value for name, value in element.attrib.items() if not name.startswith("{")}
    return attrs or None
