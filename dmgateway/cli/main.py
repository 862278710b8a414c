"""``dmgw``: the operator command, one module per command group.

    dmgw decode FILE|-            any SyncML XML/WBXML, TNDS or CP document -> readable XML;
                                  a WSP push or package #0 -> JSON
        [--pin PIN] [--imsi IMSI]   a bootstrap push: check its MAC (exit 1 if it does not verify)
        [--sec METHOD --mac HEX]    ... or a bare bootstrap document (a smart-card file) against a MAC
    dmgw bootstrap export ...     a device's smart-card bootstrap file (see its --help)
    dmgw encode --wbxml FILE|-    SyncML, TNDS or CP XML -> WBXML
    dmgw api ...                  the REST API from the shell

Errors are one line on standard error and exit status 2.
"""

import argparse
import sys

from dmgateway import __version__
from dmgateway.cli import api, bootstrap, campaign, sim
from dmgateway.cli.decode import EXIT_BAD_INPUT, EXIT_OK, Failed, cmd_decode, cmd_encode
from dmgateway.codec import errors


def build_parser():
    parser = argparse.ArgumentParser(prog="dmgw", description="dmgateway operator command")
    parser.add_argument("--version", action="version", version="dmgw (dmgateway) %s" % (__version__,))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "decode", help="SyncML XML/WBXML, TNDS or CP document -> readable XML; WSP push or package #0 -> JSON"
    )
    p.add_argument("file", metavar="FILE|-")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.add_argument("--pin", help="a bootstrap's PIN (USERPINMAC: PIN and MAC digits) to check its MAC")
    p.add_argument("--imsi", help="the IMSI to check a NETWPIN/USERNETWPIN bootstrap's MAC")
    p.add_argument("--sec", help="for a bare bootstrap document: the SEC method its MAC is for")
    p.add_argument("--mac", help="for a bare bootstrap document: the MAC to check (hex)")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("encode", help="SyncML, TNDS or CP XML -> WBXML")
    p.add_argument("file", metavar="FILE|-")
    p.add_argument("--wbxml", action="store_true", help="produce WBXML (the default output is XML)")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.set_defaults(func=cmd_encode)

    api.add_arguments(sub)
    sim.add_arguments(sub)
    bootstrap.add_arguments(sub)
    campaign.add_arguments(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except Failed as e:
        print("dmgw %s: %s" % (args.command, e), file=sys.stderr)
        return EXIT_BAD_INPUT
    except errors.CodecError as e:
        print("dmgw %s: invalid input: %s" % (args.command, e), file=sys.stderr)
        return EXIT_BAD_INPUT
    return result if isinstance(result, int) else EXIT_OK
