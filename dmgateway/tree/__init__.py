"""The device management tree (pure): URIs, ACLs, nodes, TNDS, DDF, standard MOs.

Start with :class:`~.tree.ManagementTree` (or
:func:`~.standard.standard_tree` for one with DevInfo, DevDetail, DMAcc and
Inbox); every failure is a :class:`~.uri.TreeError` carrying the DM status.
"""

from .acl import format_acl, parse_acl
from .ddf import DDF, DDFNode, parse_ddf
from .nodes import NodeData, NodeInfo
from .tnds import export_tnds, import_tnds, read_tnds, to_wbxml, to_xml
from .tree import TNDS_WBXML, TNDS_XML, ManagementTree
from .uri import URI, TreeError, UriLimits, normalize, parse_uri

__all__ = [
    "ManagementTree", "NodeData", "NodeInfo", "TreeError", "URI", "UriLimits",
    "parse_uri", "normalize", "parse_acl", "format_acl", "DDF", "DDFNode", "parse_ddf",
    "export_tnds", "import_tnds", "read_tnds", "to_xml", "to_wbxml", "TNDS_XML", "TNDS_WBXML",
]
