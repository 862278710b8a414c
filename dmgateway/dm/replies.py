"""Replies the dispatcher forms without a session: refusals and bad requests."""

from ..codec.syncml import LocRef, Results, Status, SyncHdr, SyncML


def status_only_reply(msg, code, server_uri):
    """A reply giving ``code`` to the SyncHdr and every command of ``msg``.

    Used when no session can be opened (unknown device, locked out, no live
    session): nothing is executed, every command still gets its Status.
    """
    hdr = msg.hdr
    reply = SyncML(
        hdr=SyncHdr(
            session_id=hdr.session_id,
            msg_id="1",
            target=LocRef(hdr.source.loc_uri),
            source=LocRef(server_uri),
            ver_dtd=hdr.ver_dtd,
            ver_proto=hdr.ver_proto,
        ),
        final=True,
    )
    cmd_id = 1
    reply.body.append(
        Status(
            cmd_id=str(cmd_id),
            msg_ref=hdr.msg_id,
            cmd_ref="0",
            cmd="SyncHdr",
            target_refs=[hdr.target.loc_uri],
            source_refs=[hdr.source.loc_uri],
            data=code,
        )
    )
    for cmd in msg.body:
        if isinstance(cmd, (Status, Results)) or not cmd.cmd_id:
            continue
        cmd_id += 1
        reply.body.append(
            Status(
                cmd_id=str(cmd_id),
                msg_ref=hdr.msg_id,
                cmd_ref=cmd.cmd_id,
                cmd=cmd.NAME or getattr(cmd, "name", ""),
                data=code,
            )
        )
    return reply


def bad_request_reply(body, encoding, server_uri=None):
    """A SyncML message giving Status 400 to a message that is not valid SyncML.

    Well-formed XML/WBXML whose SyncHdr still names the session (SessionID
    and Source LocURI) gets an answer the device can relate to its session
    (DESIGN §4: HTTP 200 with a Status); MsgID and Target are used when they
    can be read (the reply's Source falls back to ``server_uri``).  Anything
    less yields ``None`` (the caller answers with plain HTTP 400).
    """
    from ..codec import wbxml, xml
    from ..codec.errors import CodecError

    try:
        root = wbxml.decode_node(body) if encoding == "wbxml" else xml.parse(body)
    except CodecError:
        return None
    hdr = root.find("SyncHdr") if root.name == "SyncML" else None
    if hdr is None:
        return None

    def text(node, *path):
        for name in path:
            node = node.find(name) if node is not None else None
        value = node.text if node is not None and not node.children else None
        if isinstance(value, bytes):  # WBXML OPAQUE
            value = value.decode("utf-8", "replace")
        return value.strip() if isinstance(value, str) and value.strip() else None

    session_id, msg_id = text(hdr, "SessionID"), text(hdr, "MsgID")
    source, target = text(hdr, "Source", "LocURI"), text(hdr, "Target", "LocURI") or server_uri
    if None in (session_id, source) or target is None:
        return None
    ver_dtd = text(hdr, "VerDTD")
    ver_proto = text(hdr, "VerProto")
    return SyncML(
        hdr=SyncHdr(
            session_id=session_id,
            msg_id="1",
            target=LocRef(source),
            source=LocRef(target),
            ver_dtd=ver_dtd if ver_dtd in ("1.1", "1.2") else "1.2",
            ver_proto=ver_proto if ver_proto and len(ver_proto) <= 16 else "DM/1.2",
        ),
        body=[
            Status(
                cmd_id="1",
                msg_ref=msg_id,
                cmd_ref="0",
                cmd="SyncHdr",
                target_refs=[target],
                source_refs=[source],
                data=400,
            )
        ],
        final=True,
    )
