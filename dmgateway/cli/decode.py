"""``dmgw decode`` and ``dmgw encode``: SyncML, TNDS, CP and push documents between
wire forms and readable XML/JSON (see :mod:`dmgateway.cli` for the whole command)."""

import sys

from dmgateway.codec import errors

EXIT_OK, EXIT_BAD_INPUT = 0, 2


class Failed(Exception):
    """A one-line message for standard error; exit status 2."""


def _read(path):
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise Failed("cannot read %s: %s" % (path, e.strerror or e))


def _write(data, path):
    if path in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise Failed("cannot write %s: %s" % (path, e.strerror or e))


def _pretty(xml_bytes):
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(xml_bytes, parser)
    for element in root.iter():
        if len(element) and element.text is not None and not element.text.strip():
            element.text = None
    return etree.tostring(root, pretty_print=True, encoding="UTF-8", xml_declaration=True)


# -- document kinds ------------------------------------------------------------


def identify(data):
    """("syncml" | "tnds" | "cp", "xml" | "wbxml") for a document, or Failed."""
    from dmgateway.codec import sniff_encoding, wbxml, wbxml_pages, xml

    if not data:
        raise Failed("empty input")
    if sniff_encoding(data) == "wbxml":
        header = wbxml.read_header(data)
        vocab = wbxml_pages.vocabulary_for(header.public_id, header.fpi)
        kinds = {
            wbxml_pages.PROV10: "cp",
            wbxml_pages.DMDDF12: "tnds",
            wbxml_pages.SYNCML11: "syncml",
            wbxml_pages.SYNCML12: "syncml",
        }
        if vocab not in kinds:
            raise Failed(
                "not a SyncML, TNDS or CP WBXML document (public id 0x%X%s)"
                % (header.public_id, " %r" % (header.fpi,) if header.fpi else "")
            )
        return kinds[vocab], "wbxml"
    root = xml.parse(data)
    kinds = {"SyncML": "syncml", "MgmtTree": "tnds", "wap-provisioningdoc": "cp"}
    if root.name not in kinds:
        raise Failed("not a SyncML, TNDS or CP XML document (root element %r)" % (root.name,))
    return kinds[root.name], "xml"


def bootstrap_check(document, sec, mac, pin=None, imsi=None):
    """What ``dmgw decode`` says about a bootstrap's SEC/MAC: verified true/false, or null."""
    from dmgateway.bootstrap import sec as _sec

    view = {"sec": sec, "mac": mac}
    if sec is None:
        view["mac_verified"] = None
        view["note"] = "no SEC/MAC: an unsecured bootstrap"
    elif pin is None and imsi is None:
        view["mac_verified"] = None
        view["note"] = "give --pin and/or --imsi to check the MAC"
    else:
        view["mac_verified"] = _sec.verify_mac(sec, document, mac, pin=pin, imsi=imsi)
    return view


def decode_notification(data, pin=None, imsi=None):
    """Readable JSON for a WSP push PDU or a bare package #0, or None if ``data`` is neither.

    A bootstrap push also gets ``"bootstrap": {"profile", "sec", "mac",
    "mac_verified"}`` (checked with ``pin`` / ``imsi`` when given).
    """
    import json

    from dmgateway.notify import package0, wsp
    from dmgateway.notify.package0 import NotificationError

    def package(pkg):
        n = pkg.notification
        return {
            "kind": "package0",
            "version": n.version,
            "ui_mode": n.ui_mode,
            "initiator": "server" if n.initiator else "client",
            "session_id": n.push_session_id,
            "session_id_text": n.syncml_session_id,
            "server_id": n.server_id,
            "digest": pkg.digest.hex(),
            "vendor_body": n.body.hex(),
        }

    if len(data) > 2 and data[1] in (0x06, 0x07):  # connectionless push: TID, PDU type
        try:
            push = wsp.parse_push(data)
        except NotificationError:
            push = None
        if push is not None:
            view = {
                "kind": "wsp-push",
                "content_type": wsp.content_type_name(push),
                "application_id": wsp.application_id_name(push),
                "parameters": {str(k): str(v) for k, v in push.parameters},
            }
            boot = _bootstrap_push(data)
            if boot is not None:
                view["bootstrap"] = dict(bootstrap_check(boot.document, boot.sec, boot.mac, pin, imsi),
                                         profile=boot.profile)
            if wsp.is_dm_notification(push):
                view["body"] = package(package0.parse(push.body))
            else:
                try:
                    view["body"] = decode_to_xml(bytes(push.body)).decode("utf-8")
                except (Failed, errors.CodecError):
                    view["body_hex"] = bytes(push.body).hex()
            return (json.dumps(view, indent=2) + "\n").encode("utf-8")
    if len(data) >= 24 and data[:1] not in (b"<", b"\xef") and data[0] > 0x03:
        try:
            return (json.dumps(package(package0.parse(data)), indent=2) + "\n").encode("utf-8")
        except NotificationError:
            return None
    return None


def _bootstrap_push(data):
    from dmgateway.bootstrap import BootstrapPushError, read_push

    try:
        return read_push(data)
    except BootstrapPushError:
        return None


def _unpadded(data):
    """A WBXML document without the 0xFF padding of a smart-card file."""
    if data[:1] and data[0] <= 0x03 and data.endswith(b"\xff"):
        return data.rstrip(b"\xff")
    return data


def decode_to_xml(data):
    """Readable XML for any document ``identify`` knows."""
    from dmgateway.codec import prov, wbxml, xml

    kind, encoding = identify(data)
    if kind == "syncml":
        msg = wbxml.decode(data) if encoding == "wbxml" else xml.decode(data)
        return _pretty(xml.encode(msg))
    if kind == "cp":
        doc = prov.decode_wbxml(data) if encoding == "wbxml" else prov.decode_xml(data)
        return _pretty(prov.encode_xml(doc))
    tree = wbxml.decode_tnds(data) if encoding == "wbxml" else xml.parse(data)
    return _pretty(xml.serialize(tree))


def encode_to_wbxml(data):
    """WBXML for a SyncML, TNDS or CP XML document."""
    from dmgateway.codec import prov, wbxml, xml

    kind, encoding = identify(data)
    if encoding == "wbxml":
        raise Failed("input is already WBXML")
    if kind == "syncml":
        return wbxml.encode(xml.decode(data))
    if kind == "cp":
        return prov.encode_wbxml(prov.decode_xml(data))
    return wbxml.encode_tnds(xml.parse(data))


# -- commands ------------------------------------------------------------------


def cmd_decode(args):
    import json

    data = _read(args.file)
    pin, imsi = args.pin, args.imsi
    pushed = decode_notification(data, pin, imsi)
    if pushed is not None:
        _write(pushed, args.output)
        verified = json.loads(pushed).get("bootstrap", {}).get("mac_verified")
        return 1 if verified is False else EXIT_OK
    document = _unpadded(data)
    text = decode_to_xml(document)
    if args.sec is None:
        _write(text, args.output)
        return EXIT_OK
    if args.mac is None and args.sec.upper() != "USERPINMAC":
        raise Failed("--sec needs --mac (except USERPINMAC)")
    check = bootstrap_check(document, args.sec, args.mac, pin, imsi)
    _write(text, args.output)
    sys.stderr.write(json.dumps(check) + "\n")
    return 1 if check["mac_verified"] is False else EXIT_OK


def cmd_encode(args):
    data = _read(args.file)
    if args.wbxml:
        _write(encode_to_wbxml(data), args.output)
    else:
        _write(decode_to_xml(data), args.output)
