"""The device management tree (dm-tree-objects §1-4, dm-protocol §6.3-6.8).

:class:`ManagementTree` holds interior and leaf nodes with the run-time
properties ACL, Format, Name, Size, Title, TStamp, Type and VerNo.  Server
commands -- :meth:`~ManagementTree.get`, ``add``, ``replace``, ``delete``,
``copy``, ``exec`` -- either succeed or raise :class:`TreeError` carrying the
DM status code.  Pass ``server=<ServerID>`` to have ACLs enforced (425 on
denial); ``server=None`` means the device itself and skips ACLs (AccessType,
Scope and ``restrict`` refusals still apply to the server-command methods).
Device-side methods (``set``, ``read``, ``set_acl`` ...) bypass all checks.

Checks happen in this order: URI (414/406), existence (404/418), structure,
refusals and AccessType (405), ACL (425).  AccessType comes from a DDF bound
to a node or registered for an MO identifier (:mod:`.ddf`); the more local
description wins.  Nothing here reads the clock: TStamp values come from the
``clock`` callable given to the tree (seconds since the epoch, or a string).

Differences from the client library's ``dmgateway.client.tree``: Format
``b64`` values are stored decoded as ``bin`` (spec §2.2); ``?list=`` is also
served by :meth:`get`; Struct order is breadth-first as in the spec example;
exec hooks and the restrict/read_only helpers behave the same.

The node model is in :mod:`.nodes`, the device-side methods in :mod:`.device`.
"""

import base64
import binascii
from collections import namedtuple
from datetime import datetime, timezone

from .acl import acl_allows, format_acl, parse_acl
from .ddf import ALL_ACCESS, FORMATS
from .device import DeviceSide
from .nodes import Node, NodeData, NodeInfo, check_name, node_size
from .status import (
    ALREADY_EXISTS, BAD_FORMAT, BAD_REQUEST, BAD_URI, COMMAND_FAILED, NOT_ALLOWED, NOT_FOUND,
    NOT_SUPPORTED, OK, PERMISSION_DENIED, PROPERTIES, TNDS_TYPES, TNDS_WBXML, TNDS_XML, TOO_LARGE,
)
from .tnds import TNDS_PROPERTIES, export_tnds, import_tnds, parse_list_spec
from .uri import URI, TreeError, UriLimits, join, parse_uri

__all__ = [
    "ManagementTree",
    "TreeError",
    "PROPERTIES",
    "TNDS_XML",
    "TNDS_WBXML",
    "OK", "BAD_REQUEST", "NOT_FOUND", "NOT_ALLOWED", "NOT_SUPPORTED", "TOO_LARGE",
    "BAD_URI", "BAD_FORMAT", "ALREADY_EXISTS", "PERMISSION_DENIED", "COMMAND_FAILED",
]

_READ_ONLY_PROPS = ("Format", "Size", "TStamp", "Type", "VerNo")
# what a walk down the tree carries: the node's description, effective ACL, refusals
_State = namedtuple("_State", "desc acl refuse")


class ManagementTree(DeviceSide):
    """A device's management tree.

    ``limits`` are the ``./DevDetail/URI`` limits (the keyword arguments
    ``max_depth``, ``max_tot_len`` and ``max_seg_len`` build them too);
    ``clock`` returns the current time for TStamp; ``root_acl`` defaults
    to ``Add=*&Get=*``.
    """

    def __init__(self, limits=None, *, clock=None, root_acl="Add=*&Get=*",
                 max_depth=0, max_tot_len=0, max_seg_len=0):
        self.limits = limits or UriLimits(max_depth, max_tot_len, max_seg_len)
        self.clock = clock
        self.root = Node(".")
        self.root.permanent = True
        self.root.acl = parse_acl(root_acl)
        if not self.root.acl:
            raise ValueError("the root ACL must have a value")
        self._hooks = {}
        self._mo_ddfs = {}
        self.inbox = None  # (URI, router) installed by dmgateway.tree.standard

    max_depth = property(lambda self: self.limits.max_depth)
    max_tot_len = property(lambda self: self.limits.max_tot_len)
    max_seg_len = property(lambda self: self.limits.max_seg_len)

    # -- helpers ---------------------------------------------------------

    def parse(self, uri):
        """The :class:`~.uri.URI` of ``uri`` under this tree's limits."""
        if isinstance(uri, URI):
            return uri
        return parse_uri(uri, self.limits)

    def now(self):
        """The TStamp for a change made now (``""`` without a clock)."""
        if self.clock is None:
            return ""
        value = self.clock()
        if isinstance(value, str):
            return value
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y%m%dT%H%M%SZ")

    def _touch(self, node, tstamp=None):
        node.verno = (node.verno + 1) & 0xFFFF
        node.tstamp = self.now() if tstamp is None else tstamp

    def _chain(self, u, uri=None):
        """Nodes from the root to ``u``; 404 if it does not exist."""
        chain = [self.root]
        for name in u.segments:
            node = chain[-1]
            child = node.children.get(name) if node.interior else None
            if child is None:
                raise TreeError(NOT_FOUND, uri if uri is not None else str(u))
            chain.append(child)
        return chain

    def _child_state(self, state, child):
        if child.ddf is not None:
            desc = child.ddf
        elif child.interior and child.type and child.type in self._mo_ddfs:
            desc = self._mo_ddfs[child.type]
        else:
            desc = state.desc.child(child.name) if state.desc is not None else None
        acl = child.acl or state.acl
        refuse = dict(state.refuse, **child.refuse) if child.refuse else state.refuse
        return _State(desc, acl, refuse)

    def _state(self, chain):
        root = chain[0]
        state = _State(root.ddf, root.acl, dict(root.refuse))
        for node in chain[1:]:
            state = self._child_state(state, node)
        return state

    @staticmethod
    def _allowed(state, node, command):
        if node.access is not None:
            return command in node.access
        return command in (state.desc.access if state.desc is not None else ALL_ACCESS)

    def _guard(self, state, node, command, server, uri, access=True):
        status = state.refuse.get(command)
        if status is not None:
            raise TreeError(status, uri, "%s refused" % (command,))
        if access and not self._allowed(state, node, command):
            raise TreeError(NOT_ALLOWED, uri, "AccessType has no %s" % (command,))
        if server is not None and not acl_allows(state.acl, command, server):
            raise TreeError(PERMISSION_DENIED, uri, "ACL denies %s" % (command,))

    def _readable(self, state, node, server):
        try:
            self._guard(state, node, "Get", server, None)
        except TreeError:
            return False
        return True

    def _leaf_value(self, value, format, desc, uri):
        """``(value, format)`` as stored: b64 decoded to bin, DDF format applied."""
        format = format or "chr"
        if format not in FORMATS:
            raise TreeError(BAD_FORMAT, uri, "unknown format %r" % (format,))
        if value is None:
            value = ""
        if isinstance(value, bytearray):
            value = bytes(value)
        if not isinstance(value, (str, bytes)):
            raise TreeError(BAD_REQUEST, uri, "value must be str or bytes")
        if format == "b64":
            try:
                value = base64.b64decode(value, validate=False)
            except (binascii.Error, ValueError):
                raise TreeError(BAD_REQUEST, uri, "bad base64 data") from None
            format = "bin"
        elif format == "bin" and isinstance(value, str):
            value = value.encode("utf-8", "surrogatepass")
        elif format != "bin" and isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise TreeError(BAD_FORMAT, uri, "binary data for format %s" % (format,)) from None
        if desc is not None:
            wanted = "bin" if desc.format == "b64" else desc.format
            if wanted != format:
                if format == "chr" and wanted not in ("node", "bin"):
                    format = wanted  # Meta/Format left at its chr default
                else:
                    raise TreeError(BAD_FORMAT, uri, "format %s, DDF says %s" % (format, wanted))
        return value, format

    # -- Get -----------------------------------------------------------------

    def get(self, uri, server=None):
        """The :class:`NodeData` at ``uri`` (``?prop=`` gives a property).

        ``?list=Struct|StructData`` returns a list of :class:`NodeData`;
        ``?list=TNDS…`` one :class:`NodeData` whose value is the ``MgmtTree``
        :class:`~dmgateway.codec.element.Node`.
        """
        u = self.parse(uri)
        if u.list is not None:
            return self.get_list(u, server)
        chain = self._chain(u, uri)
        state = self._state(chain)
        node = chain[-1]
        # AccessType governs the value; properties follow the ACL (a secret's Format is readable)
        self._guard(state, node, "Get", server, uri, access=u.prop is None)
        if u.prop is not None:
            return NodeData(uri, self._property(chain, u.prop, uri), "chr", "text/plain")
        if node.interior:
            return NodeData(uri, list(node.children), "node", node.type)
        return NodeData(uri, node.value, node.format, node.type)

    def _property(self, chain, name, uri):
        node = chain[-1]
        if name == "ACL":
            return format_acl(node.acl)
        if name == "Format":
            return node.format
        if name == "Name":
            return node.name
        if name == "Size":
            if node.interior:
                raise TreeError(NOT_SUPPORTED, uri, "interior nodes have no Size")
            return str(node_size(node.value))
        if name == "Title":
            return node.title
        if name == "TStamp":
            return node.tstamp
        if name == "Type":
            return node.type or ""
        if name == "VerNo":
            return str(node.verno)
        raise TreeError(NOT_SUPPORTED, uri, "unsupported property %r" % (name,))

    def get_list(self, uri, server=None):
        """``?list=Struct``, ``StructData`` or ``TNDS[+P…|-P…]`` of the node at ``uri``."""
        u = self.parse(uri)
        listing = u.list
        if listing is None or u.prop is not None:
            raise TreeError(NOT_SUPPORTED, str(u), "not a ?list= URI")
        if listing.startswith("TNDS"):
            props = parse_list_spec(listing, str(u)) if listing != "TNDS" else TNDS_PROPERTIES
            return NodeData(u.path, export_tnds(self, URI(u.segments), server, props),
                            "xml", TNDS_XML)
        if listing not in ("Struct", "StructData"):
            raise TreeError(NOT_SUPPORTED, str(u), "unsupported list %r" % (listing,))
        with_data = listing == "StructData"
        out = []
        for info in self.walk(URI(u.segments), server):
            path = join(info.segments)
            if info.format == "node":
                out.append(NodeData(path, None, "node", info.type))
            else:
                out.append(NodeData(path, info.value if with_data else None, info.format,
                                    info.type))
        return out

    def get_struct(self, uri, with_data=False, server=None):
        """Compatibility with the client tree: ``?list=Struct`` / ``StructData``."""
        u = self.parse(uri)
        return self.get_list(URI(u.segments, list="StructData" if with_data else "Struct"),
                             server)

    def walk(self, uri=".", server=None, *, checked=True):
        """:class:`NodeInfo` for the subtree at ``uri``, breadth-first.

        With a ``server`` only nodes it may Get are reported (an interior node
        it may not read hides its subtree); 404/405/425 if the start node
        itself is missing or unreadable.  ``checked=False`` reports every
        node (the device's own view).
        """
        u = self.parse(uri)
        chain = self._chain(u, str(uri))
        state = self._state(chain)
        if checked:
            self._guard(state, chain[-1], "Get", server, str(uri))
        out = []
        queue = [(u.segments, chain[-1], state)]
        while queue:
            segments, node, state = queue.pop(0)
            out.append(self._info(segments, node))
            if node.interior:
                for name, child in node.children.items():
                    child_state = self._child_state(state, child)
                    if not checked or self._readable(child_state, child, server):
                        queue.append((segments + (name,), child, child_state))
        return out

    @staticmethod
    def _info(segments, node):
        return NodeInfo(segments, node.name, node.format, node.type, node.value,
                        format_acl(node.acl), node.title, node.tstamp, node.verno,
                        None if node.interior else node_size(node.value))

    # -- Add -----------------------------------------------------------------

    def add(self, uri, value=None, format="chr", type=None, server=None, *, acl=None):
        """Create a leaf, or an interior node when ``format`` is ``"node"``.

        Missing interior ancestors are created (ACL inherited, except that a
        server without Replace on the parent becomes Add/Delete/Replace owner
        of the first new interior node).  With a TNDS ``type`` the whole
        subtree in ``value`` is added below ``uri``.  ``acl`` sets the new
        node's ACL.  Returns the normalised URI of the node created.
        """
        u = self.parse(uri)
        if u.prop is not None or u.list is not None:
            raise TreeError(NOT_ALLOWED, uri, "properties cannot be added")
        if self.inbox is not None and u.is_under(self.inbox[0]):
            if u.segments == self.inbox[0].segments and type not in TNDS_TYPES:
                raise TreeError(ALREADY_EXISTS, uri)
            return self.inbox[1](self, u, value, format, type, server)
        if type in TNDS_TYPES:
            import_tnds(self, u, value, server, replace=False, content_type=type)
            return u.path
        if not u.segments:
            raise TreeError(ALREADY_EXISTS, uri)
        chain = [self.root]
        for name in u.segments:
            node = chain[-1]
            if not node.interior:
                raise TreeError(NOT_ALLOWED, uri, "parent is a leaf")
            child = node.children.get(name)
            if child is None:
                break
            chain.append(child)
        else:
            raise TreeError(ALREADY_EXISTS, uri)
        parent = chain[-1]
        if not parent.interior:
            raise TreeError(NOT_ALLOWED, uri, "parent is a leaf")
        state = self._state(chain)
        status = state.refuse.get("Add")
        if status is not None:
            raise TreeError(status, uri, "Add refused")
        new_names = u.segments[len(chain) - 1:]
        for name in new_names:
            check_name(name, uri)
        # descriptions of the nodes about to exist
        descs = []
        desc = state.desc
        for index, name in enumerate(new_names):
            last = index == len(new_names) - 1
            if last and format == "node" and type in self._mo_ddfs:
                desc = self._mo_ddfs[type]
            else:
                desc = desc.child(name) if desc is not None else None
            if desc is not None:
                if "Add" not in desc.access and (last or server is not None):
                    raise TreeError(NOT_ALLOWED, uri, "AccessType has no Add")
                if desc.permanent and server is not None:
                    raise TreeError(NOT_ALLOWED, uri, "permanent nodes cannot be added")
                if not last and not desc.interior:
                    raise TreeError(NOT_ALLOWED, uri, "the DDF has a leaf here")
            descs.append(desc)
        if server is not None and not acl_allows(state.acl, "Add", server):
            raise TreeError(PERMISSION_DENIED, uri, "ACL denies Add")
        if format == "node":
            value = None
        else:
            value, format = self._leaf_value(value, format, descs[-1], uri)
        new_acl = parse_acl(acl) if acl is not None else {}
        owner = server is not None and not acl_allows(state.acl, "Replace", server)
        stamp = self.now()
        for index, name in enumerate(new_names):
            last = index == len(new_names) - 1
            node = Node(name, format if last else "node", type if last else None, value)
            node.tstamp = stamp
            if descs[index] is not None:
                node.permanent = descs[index].permanent
            if index == 0 and owner and node.interior:
                node.acl = {"Add": (server,), "Delete": (server,), "Replace": (server,)}
            if last and new_acl:
                node.acl = new_acl
            parent.children[name] = node
            self._touch(parent, stamp)
            parent = node
        return u.path

    def add_interior(self, uri, type=None, server=None):
        return self.add(uri, None, "node", type, server)

    # -- Replace ---------------------------------------------------------------

    def replace(self, uri, value, format="chr", type=None, server=None):
        """Overwrite a leaf's value, an interior node's Type, or ``?prop=ACL|Name|Title``.

        With a TNDS ``type`` the subtree at ``uri`` is replaced by ``value``.
        """
        u = self.parse(uri)
        if u.list is not None:
            raise TreeError(NOT_ALLOWED, uri, "a list cannot be replaced")
        if type in TNDS_TYPES and u.prop is None:
            import_tnds(self, u, value, server, replace=True, content_type=type)
            return
        chain = self._chain(u, uri)
        state = self._state(chain)
        node = chain[-1]
        if u.prop is not None:
            self._replace_property(chain, state, u.prop, value, server, uri)
            return
        self._guard(state, node, "Replace", server, uri)
        if node.interior:
            if format != "node":
                raise TreeError(NOT_ALLOWED, uri, "interior nodes have no value")
            if type:
                node.type = type
            self._touch(node)
            return
        if format == "node":
            raise TreeError(NOT_ALLOWED, uri, "a leaf cannot become interior")
        node.value, node.format = self._leaf_value(value, format, state.desc, uri)
        node.type = type
        self._touch(node)

    def _replace_property(self, chain, state, name, value, server, uri):
        node = chain[-1]
        if name in _READ_ONLY_PROPS:
            raise TreeError(NOT_ALLOWED, uri, "%s cannot be replaced" % (name,))
        if name not in PROPERTIES:
            raise TreeError(NOT_SUPPORTED, uri, "unsupported property %r" % (name,))
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise TreeError(BAD_REQUEST, uri, "property value is not text") from None
        value = value or ""
        if not isinstance(value, str):
            raise TreeError(BAD_REQUEST, uri, "property value is not text")
        if name == "ACL":
            self._check_acl_right(chain, state, server, uri)
            acl = parse_acl(value)
            if len(chain) == 1 and (not acl or acl.get("Add") != ("*",)):
                raise TreeError(NOT_ALLOWED, uri, "the root ACL must keep Add=*")
            node.acl = acl
        elif name == "Name":
            self._guard(state, node, "Replace", server, uri)
            if len(chain) == 1 or node.permanent or (state.desc is not None
                                                     and state.desc.name is not None):
                raise TreeError(NOT_ALLOWED, uri, "this node cannot be renamed")
            check_name(value, uri)
            siblings = chain[-2].children
            if value != node.name and value in siblings:
                raise TreeError(ALREADY_EXISTS, uri)
            chain[-2].children = {(value if key == node.name else key): child
                                  for key, child in siblings.items()}
            old = tuple(n.name for n in chain[1:])
            node.name = value
            self._move_hooks(old, old[:-1] + (value,))
        else:  # Title
            self._guard(state, node, "Replace", server, uri)
            if len(value.encode("utf-8", "surrogatepass")) > 255:
                raise TreeError(TOO_LARGE, uri, "Title longer than 255 bytes")
            node.title = value
        self._touch(node)

    def _check_acl_right(self, chain, state, server, uri):
        """Replace on an interior node itself, or on the parent (§3.3)."""
        status = state.refuse.get("Replace")
        if status is not None:
            raise TreeError(status, uri, "Replace refused")
        if server is None:
            return
        node = chain[-1]
        if node.interior and acl_allows(state.acl, "Replace", server):
            return
        if len(chain) > 1 and acl_allows(self._state(chain[:-1]).acl, "Replace", server):
            return
        raise TreeError(PERMISSION_DENIED, uri, "no right to change the ACL")

    def _move_hooks(self, old, new):
        for key in [k for k in self._hooks if k[:len(old)] == old]:
            self._hooks[new + key[len(old):]] = self._hooks.pop(key)

    # -- Delete, Copy, Exec ------------------------------------------------------

    def delete(self, uri, server=None):
        """Remove the node and its whole subtree (405 for the root and permanent nodes)."""
        u = self.parse(uri)
        if u.prop is not None or u.list is not None:
            raise TreeError(NOT_ALLOWED, uri, "properties cannot be deleted")
        if not u.segments:
            raise TreeError(NOT_ALLOWED, uri, "the root cannot be deleted")
        chain = self._chain(u, uri)
        state = self._state(chain)
        node = chain[-1]
        if node.permanent:
            raise TreeError(NOT_ALLOWED, uri, "permanent node")
        self._guard(state, node, "Delete", server, uri)
        del chain[-2].children[node.name]
        self._touch(chain[-2])

    def copy(self, target, source, server=None):
        """Copy leaf ``source`` onto leaf ``target`` (added if missing)."""
        u = self.parse(source)
        if u.prop is not None or u.list is not None:
            raise TreeError(NOT_ALLOWED, source, "properties cannot be copied")
        chain = self._chain(u, source)
        state = self._state(chain)
        node = chain[-1]
        self._guard(state, node, "Get", server, source)
        if node.interior:
            raise TreeError(NOT_ALLOWED, source, "only leaves can be copied")
        if self.exists(target):
            self.replace(target, node.value, node.format, node.type, server)
        else:
            self.add(target, node.value, node.format, node.type, server)

    def exec(self, uri, data=None, correlator=None, server=None):
        """Run the hook registered for ``uri``: its status (200 if it returns None).

        A hook is ``hook(uri, data, correlator) -> status or None``; its
        :class:`TreeError` passes through, any other exception becomes 500.
        """
        u = self.parse(uri)
        if u.prop is not None or u.list is not None:
            raise TreeError(NOT_ALLOWED, uri, "properties cannot be executed")
        chain = self._chain(u, uri)
        self._guard(self._state(chain), chain[-1], "Exec", server, uri)
        hook = self._hooks.get(u.segments)
        if hook is None:
            raise TreeError(NOT_ALLOWED, uri, "not executable")
        try:
            status = hook(uri, data, correlator)
        except TreeError:
            raise
        except Exception as error:  # the hook's failure is the command's failure
            raise TreeError(COMMAND_FAILED, uri, "exec failed: %s" % (error,)) from None
        return OK if status is None else int(status)
