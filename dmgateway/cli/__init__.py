"""The ``dmgw`` operator command: :mod:`.main` builds the parser and runs it;
:mod:`.decode` (decode/encode), :mod:`.api`, :mod:`.sim`, :mod:`.bootstrap`
and :mod:`.campaign` each add their command group."""

from dmgateway.cli.decode import Failed, decode_to_xml, encode_to_wbxml, identify
from dmgateway.cli.main import build_parser, main

__all__ = ["main", "build_parser", "Failed", "decode_to_xml", "encode_to_wbxml", "identify"]
