"""The device's own operations on its management tree, without checks.

:class:`DeviceSide` is mixed into :class:`~.tree.ManagementTree`: the device
(or a test, or the simulator) sets nodes and properties, registers exec
hooks and DDFs, restricts commands, takes a server out of every ACL and
snapshots the tree for an Atomic rollback.  None of these check ACLs or
AccessType; the server commands (``get``, ``add`` ...) are in :mod:`.tree`.
"""

from .acl import acl_without_server, parse_acl
from .nodes import COMMANDS, WRITES, Node, NodeData, check_name
from .status import NOT_ALLOWED, PERMISSION_DENIED
from .uri import TreeError

__all__ = ["DeviceSide"]


class DeviceSide:
    """The device-side methods of :class:`~.tree.ManagementTree` (a mixin: it
    uses the tree's ``root``, ``parse``, ``now`` and node walk)."""

    def register_exec(self, uri, hook):
        """Make ``uri`` executable (an empty chr leaf is created if missing)."""
        u = self.parse(uri)
        if not self.exists(u):
            self.set(u, "")
        self._hooks[u.segments] = hook

    def register_ddf(self, mo_id, description):
        """Describe every interior node of Type ``mo_id`` by ``description`` (a DDFNode)."""
        self._mo_ddfs[mo_id] = description

    def bind_ddf(self, uri, description):
        """Describe the node at ``uri`` (and, through it, its subtree) by ``description``."""
        node = self._node(uri)
        node.ddf = description
        node.permanent = node.permanent or description.permanent

    def describe(self, uri):
        """The DDFNode describing ``uri``, or None."""
        u = self.parse(uri)
        return self._state(self._chain(u, str(uri))).desc

    def _node(self, uri):
        u = self.parse(uri)
        return self._chain(u, str(uri))[-1]

    def exists(self, uri):
        try:
            self._node(uri)
        except TreeError:
            return False
        return True

    def read(self, uri):
        """Like :meth:`get` without any checks (the device reading its own tree)."""
        node = self._node(uri)
        name = str(uri)
        if node.interior:
            return NodeData(name, list(node.children), "node", node.type)
        return NodeData(name, node.value, node.format, node.type)

    def info(self, uri):
        """The :class:`NodeInfo` of ``uri``, without checks."""
        u = self.parse(uri)
        return self._info(u.segments, self._chain(u, str(uri))[-1])

    def set(self, uri, value, format="chr", type=None):
        """Create or overwrite a node without checks; ancestors are created.

        An existing node keeps its properties (and, if it stays interior,
        its children); its VerNo and TStamp advance.
        """
        u = self.parse(uri)
        if not u.segments:
            raise TreeError(NOT_ALLOWED, str(uri), "the root has no value")
        for name in u.segments:
            check_name(name, str(uri))
        node = self.root
        for name in u.segments[:-1]:
            child = node.children.get(name)
            if child is None or not child.interior:
                child = node.children[name] = Node(name)
                child.tstamp = self.now()
            node = child
        if format != "node":
            value, format = self._leaf_value(value, format, None, str(uri))
        old = node.children.get(u.segments[-1])
        new = Node(u.segments[-1], format or "chr", type, value)
        if old is not None:
            for slot in ("acl", "title", "verno", "permanent", "access", "refuse", "ddf"):
                setattr(new, slot, getattr(old, slot))
            if old.interior and new.interior:
                new.children = old.children
        node.children[new.name] = new
        self._touch(new)
        return u.path

    def set_acl(self, uri, acl):
        node = self._node(uri)
        parsed = parse_acl(acl)
        if node is self.root and not parsed:
            raise TreeError(NOT_ALLOWED, str(uri), "the root ACL must have a value")
        node.acl = parsed
        self._touch(node)

    def set_title(self, uri, title):
        self._node(uri).title = title

    def set_permanent(self, uri, permanent=True):
        self._node(uri).permanent = permanent

    def set_access(self, uri, commands):
        """Set the node's AccessType (``None``: back to its DDF or everything)."""
        if commands is not None:
            unknown = set(commands) - set(COMMANDS)
            if unknown:
                raise ValueError("unknown commands %r" % (sorted(unknown),))
            commands = frozenset(commands)
        self._node(uri).access = commands

    def restrict(self, uri, commands, status=PERMISSION_DENIED):
        """Refuse ``commands`` on ``uri`` and everything below it with ``status``."""
        node = self._node(uri)
        for command in commands:
            if command not in COMMANDS:
                raise ValueError("unknown command %r" % (command,))
            node.refuse[command] = status

    def read_only(self, uri, status=PERMISSION_DENIED):
        self.restrict(uri, WRITES, status)

    def unrestrict(self, uri):
        self._node(uri).refuse.clear()

    def remove_server(self, server):
        """Take ``server`` out of every ACL (dm-tree-objects §3.3)."""
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.acl:
                node.acl = acl_without_server(node.acl, server, root=node is self.root)
            if node.interior:
                stack.extend(node.children.values())

    # -- Atomic ----------------------------------------------------------------

    def snapshot(self):
        """An opaque copy of the whole tree for :meth:`restore` (Atomic rollback)."""
        return self.root.clone()

    def restore(self, snapshot):
        self.root = snapshot.clone()
