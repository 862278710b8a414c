"""A small in-memory management tree for the DM client library.

Good enough for a device simulator and for tests of the server; the full
:mod:`dmgateway.tree` (ACL enforcement, DDF, TNDS) will replace it behind the
same methods.  Every server-facing operation either succeeds or raises
:class:`TreeError` carrying the DM status code (dm-tree-objects §1-3,
dm-protocol §6):

* 404 missing node, 418 already exists, 405 not allowed (Delete of the root
  or a permanent node, Get below ``./Inbox``, a leaf used as a parent ...),
  414 malformed or too long URI (``./DevDetail/URI`` limits), 406 unsupported
  property or ``?list=`` form;
* 425 (or another code) for commands refused on a node and everything
  below it with :meth:`ManagementTree.restrict` -- the stand-in for ACLs.

Leaf values are ``str`` (chr, int, bool, xml ...) or ``bytes`` (Format
``bin``).  Interior nodes have Format ``node`` and an optional MO type.
"""

from collections import namedtuple

from .account import AAUTH_TYPES

__all__ = [
    "NodeData",
    "TreeError",
    "ManagementTree",
    "default_tree",
    "DEVINFO_LEAVES",
    "populate_defaults",
    "account_path",
    "client_nonce_path",
    "server_nonce_path",
]

OK = 200
NOT_FOUND = 404
NOT_ALLOWED = 405
NOT_SUPPORTED = 406
BAD_URI = 414
ALREADY_EXISTS = 418
PERMISSION_DENIED = 425
COMMAND_FAILED = 500

COMMANDS = ("Add", "Copy", "Delete", "Exec", "Get", "Replace")
_READ_ONLY = ("Add", "Delete", "Replace")

MO_DMACC = "urn:oma:mo:oma-dm-dmacc:1.0"
MO_DEVINFO = "urn:oma:mo:oma-dm-devinfo:1.0"
MO_DEVDETAIL = "urn:oma:mo:oma-dm-devdetail:1.0"
MO_INBOX = "urn:oma:mo:oma-dm-inbox:1.0"

NodeData = namedtuple("NodeData", "uri value format type")
NodeData.__doc__ = """One node as read: for an interior node ``value`` is the list of child
names and ``format`` is ``"node"``; for a leaf ``value`` is ``str`` or ``bytes``."""


class TreeError(Exception):
    """A tree operation failed with DM status ``status``."""

    def __init__(self, status, uri, reason=""):
        self.status = status
        self.uri = uri
        self.reason = reason
        super().__init__("%d %s%s" % (status, uri, (": " + reason) if reason else ""))


class _Node:
    __slots__ = ("name", "format", "type", "value", "children", "acl", "title", "permanent",
                 "refuse")

    def __init__(self, name, format="node", type=None, value=None):
        self.name = name
        self.format = format
        self.type = type
        self.value = None if format == "node" else ("" if value is None else value)
        self.children = {} if format == "node" else None
        self.acl = ""
        self.title = ""
        self.permanent = False
        self.refuse = {}  # command -> status code

    @property
    def interior(self):
        return self.children is not None

    def clone(self):
        copy = _Node(self.name, self.format, self.type, self.value)
        copy.acl, copy.title, copy.permanent = self.acl, self.title, self.permanent
        copy.refuse = dict(self.refuse)
        if self.children is not None:
            copy.children = {name: child.clone() for name, child in self.children.items()}
        return copy


def _size(value):
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return len((value or "").encode("utf-8", "surrogatepass"))


class ManagementTree:
    """The device's management tree.  ``max_*`` are the DevDetail/URI limits (0 = none)."""

    def __init__(self, *, max_depth=0, max_tot_len=0, max_seg_len=0):
        self.max_depth = max_depth
        self.max_tot_len = max_tot_len
        self.max_seg_len = max_seg_len
        self.root = _Node(".")
        self.root.permanent = True
        self.root.acl = "Add=*&Get=*"
        self._hooks = {}

    # -- URIs -------------------------------------------------------------

    def parse(self, uri):
        """``(segments, query)`` of a URI; query is None or e.g. ``"prop=ACL"``.

        Raises TreeError 414 for malformed URIs (empty segments, ``..``,
        trailing slash) and URIs over the limits.
        """
        if not isinstance(uri, str) or not uri:
            raise TreeError(BAD_URI, uri, "empty URI")
        if self.max_tot_len and len(uri) > self.max_tot_len:
            raise TreeError(BAD_URI, uri, "URI longer than %d" % (self.max_tot_len,))
        path, mark, query = uri.partition("?")
        if path == ".":
            return (), (query if mark else None)
        if path.startswith("./"):
            path = path[2:]
        segments = tuple(path.split("/"))
        for segment in segments:
            if segment in ("", ".", ".."):
                raise TreeError(BAD_URI, uri, "malformed URI")
            if self.max_seg_len and len(segment) > self.max_seg_len:
                raise TreeError(BAD_URI, uri, "segment longer than %d" % (self.max_seg_len,))
        if self.max_depth and len(segments) > self.max_depth:
            raise TreeError(BAD_URI, uri, "deeper than %d" % (self.max_depth,))
        return segments, (query if mark else None)

    @staticmethod
    def _key(segments):
        return "/".join(segments)

    def _chain(self, segments, uri):
        """Nodes from the root to the addressed node; 404 if it does not exist."""
        chain = [self.root]
        for segment in segments:
            node = chain[-1]
            child = node.children.get(segment) if node.interior else None
            if child is None:
                raise TreeError(NOT_FOUND, uri)
            chain.append(child)
        return chain

    @staticmethod
    def _check(chain, command, uri):
        """Raise the refusal set on the nearest node of ``chain`` for ``command``."""
        for node in reversed(chain):
            status = node.refuse.get(command)
            if status is not None:
                raise TreeError(status, uri, "%s refused" % (command,))

    # -- server commands ------------------------------------------------

    def get(self, uri):
        """A :class:`NodeData` for the node (or ``?prop=`` property) at ``uri``."""
        segments, query = self.parse(uri)
        chain = self._chain(segments, uri)
        self._check(chain, "Get", uri)
        node = chain[-1]
        if query is not None:
            return self._get_property(node, query, uri)
        if node.interior:
            return NodeData(uri, list(node.children), "node", node.type)
        return NodeData(uri, node.value, node.format, node.type)

    def _get_property(self, node, query, uri):
        key, _, name = query.partition("=")
        if key != "prop":
            raise TreeError(NOT_SUPPORTED, uri, "unsupported query")
        if name == "Size":
            if node.interior:
                raise TreeError(NOT_SUPPORTED, uri, "interior nodes have no Size")
            value = str(_size(node.value))
        elif name == "ACL":
            value = node.acl
        elif name == "Format":
            value = node.format
        elif name == "Name":
            value = node.name
        elif name == "Type":
            value = node.type or ""
        elif name == "Title":
            value = node.title
        else:
            raise TreeError(NOT_SUPPORTED, uri, "unsupported property")
        return NodeData(uri, value, "chr", "text/plain")

    def get_struct(self, uri, with_data=False):
        """``?list=Struct`` (or ``StructData``): the subtree at ``uri``, pre-order.

        Leaves carry their value only ``with_data``; nodes the server may not
        Get are left out with everything below them.
        """
        segments, query = self.parse(uri)
        if query is not None:
            raise TreeError(NOT_SUPPORTED, uri, "unexpected query")
        chain = self._chain(segments, uri)
        self._check(chain, "Get", uri)
        base = "." if not segments else "./" + self._key(segments)
        out = []
        stack = [(base, chain[-1])]
        while stack:
            path, node = stack.pop()
            if node.interior:
                out.append(NodeData(path, None, "node", node.type))
                for name, child in reversed(list(node.children.items())):
                    if "Get" not in child.refuse:
                        stack.append((path + "/" + name, child))
            else:
                out.append(NodeData(path, node.value if with_data else None, node.format,
                                    node.type))
        return out

    def add(self, uri, value=None, format="chr", type=None):
        """Create a leaf (or an interior node when ``format`` is ``"node"``).

        Missing interior ancestors are created as plain interior nodes.
        """
        segments, query = self.parse(uri)
        if query is not None:
            raise TreeError(NOT_ALLOWED, uri, "properties cannot be added")
        if not segments:
            raise TreeError(ALREADY_EXISTS, uri)
        chain = [self.root]
        for depth, segment in enumerate(segments):
            node = chain[-1]
            if not node.interior:
                raise TreeError(NOT_ALLOWED, uri, "parent is a leaf")
            child = node.children.get(segment)
            if child is None:
                break
            chain.append(child)
        else:
            raise TreeError(ALREADY_EXISTS, uri)
        if not chain[-1].interior:
            raise TreeError(NOT_ALLOWED, uri, "parent is a leaf")
        self._check(chain, "Add", uri)
        parent = chain[-1]
        for segment in segments[len(chain) - 1:-1]:
            parent = parent.children.setdefault(segment, _Node(segment))
        parent.children[segments[-1]] = _Node(segments[-1], format or "chr", type, value)

    def add_interior(self, uri, type=None):
        self.add(uri, None, "node", type)

    def replace(self, uri, value, format="chr", type=None):
        """Overwrite a leaf's value (or ``?prop=ACL|Name|Title``)."""
        segments, query = self.parse(uri)
        chain = self._chain(segments, uri)
        self._check(chain, "Replace", uri)
        node = chain[-1]
        if query is not None:
            self._replace_property(chain, query, value, uri)
            return
        if node.interior:
            if format != "node":
                raise TreeError(NOT_ALLOWED, uri, "interior nodes have no value")
            if type:
                node.type = type
            return
        if format == "node":
            raise TreeError(NOT_ALLOWED, uri, "a leaf cannot become interior")
        node.value = "" if value is None else value
        node.format = format or "chr"
        node.type = type

    def _replace_property(self, chain, query, value, uri):
        key, _, name = query.partition("=")
        if key != "prop":
            raise TreeError(NOT_SUPPORTED, uri, "unsupported query")
        node = chain[-1]
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise TreeError(COMMAND_FAILED, uri, "property value is not text") from None
        value = value or ""
        if name == "ACL":
            node.acl = value
        elif name == "Title":
            node.title = value
        elif name == "Name":
            if node.permanent or len(chain) == 1:
                raise TreeError(NOT_ALLOWED, uri, "permanent node")
            if not value or "/" in value or value in (".", ".."):
                raise TreeError(BAD_URI, uri, "bad node name")
            siblings = chain[-2].children
            if value in siblings:
                raise TreeError(ALREADY_EXISTS, uri)
            siblings[value] = siblings.pop(node.name)
            node.name = value
        elif name in ("Format", "Type", "Size"):
            raise TreeError(NOT_ALLOWED, uri, "%s cannot be replaced" % (name,))
        else:
            raise TreeError(NOT_SUPPORTED, uri, "unsupported property")

    def delete(self, uri):
        """Remove the node and its whole subtree."""
        segments, query = self.parse(uri)
        if query is not None:
            raise TreeError(NOT_ALLOWED, uri, "properties cannot be deleted")
        if not segments:
            raise TreeError(NOT_ALLOWED, uri, "the root cannot be deleted")
        chain = self._chain(segments, uri)
        self._check(chain, "Delete", uri)
        if chain[-1].permanent:
            raise TreeError(NOT_ALLOWED, uri, "permanent node")
        del chain[-2].children[segments[-1]]

    def copy(self, target, source):
        """Copy leaf ``source`` onto leaf ``target`` (created if missing)."""
        src_segments, src_query = self.parse(source)
        if src_query is not None:
            raise TreeError(NOT_ALLOWED, source, "properties cannot be copied")
        chain = self._chain(src_segments, source)
        self._check(chain, "Get", source)
        node = chain[-1]
        if node.interior:
            raise TreeError(NOT_ALLOWED, source, "only leaves can be copied")
        if self.exists(target):
            self.replace(target, node.value, node.format, node.type)
        else:
            self.add(target, node.value, node.format, node.type)

    def exec(self, uri, data=None, correlator=None):
        """Run the hook registered for ``uri``; returns its status (200 if it returns None)."""
        segments, query = self.parse(uri)
        if query is not None:
            raise TreeError(NOT_ALLOWED, uri, "properties cannot be executed")
        chain = self._chain(segments, uri)
        self._check(chain, "Exec", uri)
        hook = self._hooks.get(self._key(segments))
        if hook is None:
            raise TreeError(NOT_ALLOWED, uri, "not executable")
        try:
            status = hook(uri, data, correlator)
        except TreeError:
            raise
        except Exception as error:  # a hook's failure is the command's failure
            raise TreeError(COMMAND_FAILED, uri, "exec hook failed: %s" % (error,)) from None
        return OK if status is None else int(status)

    # -- device side ------------------------------------------------------

    def register_exec(self, uri, hook):
        """Make ``uri`` executable: ``hook(uri, data, correlator) -> status or None``.

        The leaf is created (Format ``chr``, empty) if it does not exist.
        """
        segments, _ = self.parse(uri)
        if not self.exists(uri):
            self.set(uri, "")
        self._hooks[self._key(segments)] = hook

    def exists(self, uri):
        try:
            segments, _ = self.parse(uri)
            self._chain(segments, uri)
        except TreeError:
            return False
        return True

    def read(self, uri):
        """Like :meth:`get` but ignoring refusals (the device reading its own tree)."""
        segments, _ = self.parse(uri)
        node = self._chain(segments, uri)[-1]
        if node.interior:
            return NodeData(uri, list(node.children), "node", node.type)
        return NodeData(uri, node.value, node.format, node.type)

    def set(self, uri, value, format="chr", type=None):
        """Create or overwrite a node without any checks; ancestors are created."""
        segments, _ = self.parse(uri)
        node = self.root
        for segment in segments[:-1]:
            child = node.children.get(segment)
            if child is None or not child.interior:
                child = node.children[segment] = _Node(segment)
            node = child
        if not segments:
            raise TreeError(NOT_ALLOWED, uri, "the root has no value")
        old = node.children.get(segments[-1])
        new = _Node(segments[-1], format or "chr", type, value)
        if old is not None:
            new.acl, new.title = old.acl, old.title
            new.permanent, new.refuse = old.permanent, old.refuse
            if old.interior and new.interior:
                new.children = old.children
        node.children[segments[-1]] = new

    def restrict(self, uri, commands, status=PERMISSION_DENIED):
        """Refuse ``commands`` on ``uri`` and everything below it with ``status``."""
        segments, _ = self.parse(uri)
        node = self._chain(segments, uri)[-1]
        for command in commands:
            if command not in COMMANDS:
                raise ValueError("unknown command %r" % (command,))
            node.refuse[command] = status

    def read_only(self, uri, status=PERMISSION_DENIED):
        """Refuse Add, Replace and Delete at and below ``uri``."""
        self.restrict(uri, _READ_ONLY, status)

    def unrestrict(self, uri):
        segments, _ = self.parse(uri)
        self._chain(segments, uri)[-1].refuse.clear()

    def set_permanent(self, uri, permanent=True):
        segments, _ = self.parse(uri)
        self._chain(segments, uri)[-1].permanent = permanent

    def set_acl(self, uri, acl):
        segments, _ = self.parse(uri)
        self._chain(segments, uri)[-1].acl = acl

    # -- Atomic -------------------------------------------------------------

    def snapshot(self):
        """An opaque copy of the whole tree for :meth:`restore`."""
        return self.root.clone()

    def restore(self, snapshot):
        self.root = snapshot.clone()


# -- standard objects -------------------------------------------------------

DEFAULT_DEVINFO = {"Man": "dmgateway", "Mod": "dmgw-sim", "DmV": "1.2", "Lang": "en-US"}
DEFAULT_DEVDETAIL = {
    "DevTyp": "simulator", "OEM": "dmgateway", "FwV": "1.0", "SwV": "1.0", "HwV": "1.0",
}
DEVINFO_LEAVES = ("DevId", "Man", "Mod", "DmV", "Lang")  # what package 1 reports


def account_path(account):
    return "./DMAcc/" + account.name


def client_nonce_path(account):
    return account_path(account) + "/AppAuth/1/AAuthData"


def server_nonce_path(account):
    return account_path(account) + "/AppAuth/2/AAuthData"


def populate_defaults(tree, account, devinfo=None, devdetail=None):
    """Fill ``tree`` with DevInfo, DevDetail, DMAcc/<x> for ``account`` and Inbox.

    ``devinfo``/``devdetail`` override the default leaf values (keys are
    paths below the object, e.g. ``"SwV"`` or ``"Ext/Foo"``).
    """
    info = dict(DEFAULT_DEVINFO, DevId=account.device_id, **(devinfo or {}))
    tree.set("./DevInfo", None, "node", MO_DEVINFO)
    for name, value in info.items():
        tree.set("./DevInfo/" + name, value)
    detail = dict(DEFAULT_DEVDETAIL, **(devdetail or {}))
    tree.set("./DevDetail", None, "node", MO_DEVDETAIL)
    for name, value in detail.items():
        tree.set("./DevDetail/" + name, value)
    tree.set("./DevDetail/LrgObj", "true", "bool")
    for name, limit in (("MaxDepth", tree.max_depth), ("MaxTotLen", tree.max_tot_len),
                        ("MaxSegLen", tree.max_seg_len)):
        tree.set("./DevDetail/URI/" + name, str(limit))
    for top in ("./DevInfo", "./DevDetail"):
        tree.set_acl(top, "Get=*")
        tree.set_permanent(top)
        tree.restrict(top, _READ_ONLY, NOT_ALLOWED)

    tree.set("./Inbox", None, "node", MO_INBOX)
    tree.restrict("./Inbox", ("Get",), NOT_ALLOWED)

    base = account_path(account)
    sid = account.server_id
    tree.set("./DMAcc", None, "node")
    tree.set(base, None, "node", MO_DMACC)
    tree.set_acl(base, "Get=%s&Replace=%s&Delete=%s" % (sid, sid, sid))
    tree.set(base + "/AppID", "w7")
    tree.set(base + "/ServerID", sid)
    tree.set(base + "/Name", "")
    tree.set(base + "/AppAddr/1/Addr", account.server_url)
    tree.set(base + "/AppAddr/1/AddrType", "URI")
    tree.set(base + "/AAuthPref", AAUTH_TYPES[account.client.scheme])
    for index, level, creds in ((1, "CLCRED", account.client), (2, "SRVCRED", account.server)):
        auth = "%s/AppAuth/%d/" % (base, index)
        tree.set(auth + "AAuthLevel", level)
        tree.set(auth + "AAuthType", AAUTH_TYPES[creds.scheme])
        tree.set(auth + "AAuthName", creds.name)
        tree.set(auth + "AAuthSecret", creds.secret)
        tree.set(auth + "AAuthData", creds.nonce, "bin")
        for secret in ("AAuthSecret", "AAuthData"):
            tree.restrict(auth + secret, ("Get",), NOT_ALLOWED)
    return tree


def default_tree(account, *, devinfo=None, devdetail=None, max_depth=0, max_tot_len=0,
                 max_seg_len=0):
    """A new :class:`ManagementTree` with the standard objects for ``account``."""
    tree = ManagementTree(max_depth=max_depth, max_tot_len=max_tot_len, max_seg_len=max_seg_len)
    return populate_defaults(tree, account, devinfo, devdetail)

