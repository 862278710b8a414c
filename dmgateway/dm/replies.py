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
