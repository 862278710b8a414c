"""
C{dmgw bootstrap export}: the DM-3 smart-card bootstrap file, made by the gateway.

    dmgw bootstrap export --device ID --profile dm|cp [--sec METHOD [--pin PIN]]
        [--layout dm12|dm11] [--tnds] [--name TEXT] [--napdef JSON] [--proxy JSON]
        [--format wbxml|push] [--size BYTES] --out FILE
        [--url URL] [--token-file F | --token T] [--timeout S]

It asks the REST API for the device's bootstrap with C{deliver: return}
(so, like every bootstrap, it gives the device new credentials and the
gateway expects them from then on) and writes the file:

  - C{--format wbxml} (default): the WBXML document alone, byte for byte as
    it would be pushed: the DM-profile SyncML message or the CP document.
    This is what the card's provisioning file holds (DM Bootstrap: the same
    content as over the air).  The card file layout (PKCS#15 DODF entry,
    file ids) is not confirmed in the spec notes, so nothing else is added.
  - C{--format push}: the whole WSP push (content type, SEC, MAC, document),
    for personalisation systems that store or forward pushes.
  - C{--size N}: pad the file with 0xFF (the erased state of a card's
    transparent EF) to exactly N bytes; the gateway refuses a larger
    document (C{max_size}) before it changes the device's credentials.

C{--sec} defaults to C{none}: a card needs no MAC (its content is trusted as
the card is).  The answer's SEC, MAC and size (and the USERPINMAC code to
give the user) are printed as JSON on standard error.  Exit status as
C{dmgw api}: 0, 1 when the API refuses, 2 on usage or connection errors.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from typing import Any, TextIO

from dmgateway.cli import api as api_cli

PAD = b"\xff"
#: the most a bootstrap push adds to its document: TID, PDU type, headers length,
#: length-quoted content type with SEC and a 40-digit MAC, X-WAP-Application-ID
PUSH_OVERHEAD = 52


def add_arguments(subparsers: Any) -> argparse.ArgumentParser:
    boot = subparsers.add_parser(
        "bootstrap", help="bootstrap files (DM-3 smart card)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = boot.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export", help="write a device's smart-card bootstrap file",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--device", required=True, help="the device id")
    export.add_argument("--profile", required=True, choices=("dm", "cp"))
    export.add_argument("--sec", default="none",
                        choices=("none", "NETWPIN", "USERPIN", "USERNETWPIN", "USERPINMAC"))
    export.add_argument("--pin", help="the PIN for the USER* methods")
    export.add_argument("--layout", choices=("dm12", "dm11"), help="DMAcc layout (dm profile)")
    export.add_argument("--tnds", action="store_true", help="the account as one TNDS object (dm profile)")
    export.add_argument("--name", help="the account's display name")
    export.add_argument("--napdef", metavar="JSON", help="NAPDEF parameters (cp profile)")
    export.add_argument("--proxy", metavar="JSON", help="PXLOGICAL parameters (cp profile)")
    export.add_argument("--format", default="wbxml", choices=("wbxml", "push"),
                        help="what the file holds (default wbxml: the document alone)")
    export.add_argument("--size", type=int, metavar="BYTES",
                        help="pad with 0xFF to exactly this many bytes")
    export.add_argument("--out", required=True, metavar="FILE", help="the file to write ('-': stdout)")
    api_cli._connection_arguments(export, {
        "url": api_cli.DEFAULT_URL, "token_file": api_cli.DEFAULT_TOKEN_FILE, "token": None,
        "timeout": 30.0,
    })
    export.set_defaults(func=run)
    return boot


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"profile": args.profile, "sec": args.sec, "deliver": "return"}
    if args.pin is not None:
        body["pin"] = args.pin
    if args.layout is not None:
        body["layout"] = args.layout
    if args.tnds:
        body["tnds"] = True
    if args.name is not None:
        body["name"] = args.name
    if args.size is not None:  # the gateway refuses a larger one before it changes anything
        body["max_size"] = args.size - (PUSH_OVERHEAD if args.format == "push" else 0)
        if body["max_size"] < 1:
            raise api_cli._Failed(api_cli.USAGE, f"--size {args.size} leaves no room for a push")
    for key in ("napdef", "proxy"):
        text = getattr(args, key)
        if text is not None:
            try:
                body[key] = json.loads(text)
            except ValueError as e:
                raise api_cli._Failed(api_cli.USAGE, f"--{key} is not valid JSON: {e}") from None
    return body


def card_file(answer: dict[str, Any], fmt: str, size: int | None) -> bytes:
    data = base64.b64decode(answer["push" if fmt == "push" else "document"])
    if size is not None:
        if size < len(data):
            raise api_cli._Failed(api_cli.USAGE, f"the {fmt} is {len(data)} bytes, more than --size {size}")
        data += PAD * (size - len(data))
    return data


def _write(data: bytes, path: str) -> None:
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
    except OSError as e:
        raise api_cli._Failed(api_cli.USAGE, f"cannot write {path}: {e.strerror or e}") from None


def run(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
        stdin: TextIO | None = None) -> int:
    err = stderr or sys.stderr
    try:
        if args.size is not None and not 1 <= args.size <= 65535:
            raise api_cli._Failed(api_cli.USAGE, "--size must be 1 to 65535 bytes")
        body = request_body(args)
        client = api_cli._Client(args.url, api_cli._token(args), args.timeout)
        answer = client.call("POST", api_cli._device_path(args.device) + "/bootstrap", body)
        data = card_file(answer, args.format, args.size)
        _write(data, args.out)
    except api_cli._Failed as e:
        err.write(f"dmgw bootstrap: {e.message}\n")
        return e.status
    summary = {k: answer.get(k) for k in ("profile", "sec", "mac", "user_pin") if answer.get(k) is not None}
    summary.update(format=args.format, bytes=len(data), document_bytes=answer.get("size"))
    err.write(json.dumps(summary) + "\n")
    return api_cli.OK
