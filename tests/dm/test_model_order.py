"""The session engine builds some SyncML models with positional arguments
(a keyword call costs more than the rest of making them, in the hot path of
every reply): these tests pin the field order those calls rely on."""

from dataclasses import fields

from dmgateway.codec import syncml as sm


def _names(cls):
    return [f.name for f in fields(cls)]


def test_synchdr_fields_in_the_order_reply_hdr_passes_them():
    assert _names(sm.SyncHdr) == ["session_id", "msg_id", "target", "source", "ver_dtd", "ver_proto",
                                  "resp_uri", "no_resp", "cred", "meta"]


def test_status_fields_in_the_order_the_engine_passes_them():
    assert _names(sm.Status) == ["cmd_id", "msg_ref", "cmd_ref", "cmd", "target_refs", "source_refs",
                                 "cred", "chal", "data", "items"]


def test_message_meta_cred_and_chal_lead_with_the_fields_passed():
    assert _names(sm.SyncML)[:3] == ["hdr", "body", "final"]
    assert _names(sm.Meta)[:2] == ["type", "format"]
    assert _names(sm.Cred) == ["meta", "data"]
    assert _names(sm.Chal) == ["meta"]


def test_item_and_plain_commands_lead_with_the_fields_passed():
    # dmgateway.dm.commands.build_command: Item(LocRef(target)), Get/Delete("", False, None, None, items)
    assert _names(sm.Item)[0] == "target"
    assert _names(sm.LocRef)[0] == "loc_uri"
    for cls in (sm.Get, sm.Delete):
        assert _names(cls) == ["cmd_id", "no_resp", "cred", "meta", "items"]
