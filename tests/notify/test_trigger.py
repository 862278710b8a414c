"""Tests for dmgateway.notify.trigger: the spec's SMS, SMPP and SIP payloads
from one call, segmentation of big triggers, and what gets rejected."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.notify import package0 as p0
from dmgateway.notify import sms, trigger, wsp
from dmgateway.notify.package0 import NotificationError, ServerCredential
from tests.notify import vectors as v

CRED = ServerCredential(v.SERVER_ID, v.SERVER_NONCE, secret=v.SERVER_PASSWORD)


def vector_trigger(**kwargs):
    kwargs.setdefault("ui_mode", p0.UI_USER_INTERACTION)
    return trigger.build_trigger(CRED, v.SERVER_ID, v.SESSION_ID, **kwargs)


def test_sip_payload_is_the_package():
    message = vector_trigger(bearer="sip")
    assert message.payloads == (v.PACKAGE0,)
    assert message.package0 == v.PACKAGE0
    assert message.content_type == "application/vnd.syncml.notification"
    assert message.syncml_session_id == "1234"
    assert message.esm_class is None and message.data_coding is None


def test_sms_payload_is_the_submit_sm_short_message():
    message = vector_trigger()
    short_message = v.SUBMIT_SM[v.SUBMIT_SM_SHORT_MESSAGE_OFFSET:]
    assert message.payloads == (short_message,)
    assert v.SUBMIT_SM[v.SUBMIT_SM_SHORT_MESSAGE_OFFSET - 1] == len(short_message)
    assert message.esm_class == v.SUBMIT_SM[v.SUBMIT_SM_ESM_CLASS_OFFSET] == trigger.ESM_CLASS_UDHI
    assert message.data_coding == v.SUBMIT_SM[v.SUBMIT_SM_SHORT_MESSAGE_OFFSET - 3] == sms.DCS_8BIT


def test_sms_payload_as_modem_tpdu():
    message = vector_trigger(data_coding=sms.DCS_8BIT_CLASS1)
    [submit] = trigger.sms_submits(message, v.SMS_DESTINATION)
    assert sms.encode_submit(submit) == v.SMS_SUBMIT


def test_device_side_reading_of_an_sms_trigger():
    message = vector_trigger()
    ud = sms.parse_user_data(sms.parse_submit(v.SMS_SUBMIT).user_data)
    assert ud.ports[0] == sms.WAP_PUSH_PORT
    pdu = wsp.parse_push(sms.Reassembler().add(ud))
    assert wsp.is_dm_notification(pdu)
    package = p0.parse(pdu.body)
    assert package.notification.syncml_session_id == message.syncml_session_id
    assert p0.verify(package, CRED).resynchronised is False


def test_resync_nonce_and_version_are_passed_through():
    message = vector_trigger(bearer="sip", nonce=b"0x00000000", version=12)
    package = p0.parse(message.package0)
    assert package.notification.version == 12
    assert p0.verify(package, CRED).nonce == b"0x00000000"


def test_big_trigger_is_concatenated():
    message = trigger.build_trigger(CRED, v.SERVER_ID, 7, body=bytes(200), reference=0x55)
    assert len(message.payloads) == 2
    assert [p[7:12] for p in message.payloads] == [bytes.fromhex("0003550201"), bytes.fromhex("0003550202")]
    submits = trigger.sms_submits(message, "+15550001", message_reference=255, status_report=True)
    assert [s.message_reference for s in submits] == [255, 0]
    assert all(s.udhi and s.status_report for s in submits)
    r = sms.Reassembler()
    pushes = [r.add(sms.parse_user_data(sms.parse_submit(sms.encode_submit(s)).user_data)) for s in submits]
    assert wsp.parse_push(pushes[-1]).body == message.package0


@pytest.mark.parametrize("kwargs", [
    {"bearer": "obex"}, {"data_coding": 0x00}, {"reference": 256}, {"ui_mode": 4}, {"tid": 300},
    {"ports": (2948, 9200), "body": bytes(128 * 255)},
])
def test_rejects(kwargs):
    with pytest.raises(NotificationError):
        vector_trigger(**kwargs)


def test_sms_submits_needs_an_sms_trigger():
    with pytest.raises(NotificationError):
        trigger.sms_submits(vector_trigger(bearer="sip"), v.SMS_DESTINATION)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 0xFFFF), st.integers(0, 3), st.binary(max_size=400), st.integers(0, 255),
       st.sampled_from(trigger.BEARERS))
def test_payloads_carry_the_package(session_id, ui_mode, body, reference, bearer):
    message = trigger.build_trigger(CRED, v.SERVER_ID, session_id, ui_mode=ui_mode, body=body,
                                    reference=reference, bearer=bearer)
    if bearer == "sip":
        data = message.payloads[0]
    else:
        r = sms.Reassembler()
        data = [r.add(sms.parse_user_data(p)) for p in message.payloads][-1]
        data = wsp.parse_push(data).body
    package = p0.parse(data)
    assert package.notification.push_session_id == session_id and package.notification.body == body
    assert p0.verify(package, CRED, resync_nonces=()) is not None


def test_push_message_packs_a_ready_push():
    import pytest as _pytest

    from dmgateway.notify import sms as _sms
    from dmgateway.notify.package0 import NotificationError as _Error
    from dmgateway.notify.trigger import push_message
    from tests.bootstrap import vectors

    single = push_message(vectors.CP_PUSH, reference=3)  # 128 bytes: one SMS, no concatenation IE
    assert (single.bearer, single.esm_class, single.data_coding) == ("sms", 0x40, 0x04)
    assert single.content_type == "application/vnd.wap.connectivity-wbxml"
    assert single.payloads == (bytes.fromhex("0605040b8423f0") + vectors.CP_PUSH,)
    push = vectors.DM_PUSH_HEAD + vectors.DM_DOC
    message = push_message(push, reference=3)
    assert message.content_type == "application/vnd.syncml.dm+wbxml"
    assert len(message.payloads) == 5 and all(len(p) <= 140 for p in message.payloads)
    parts = [_sms.parse_user_data(p) for p in message.payloads]
    assert [p.concatenation.reference for p in parts] == [3] * 5
    assert b"".join(p.payload for p in parts) == push
    for bad, kwargs in ((b"\x01", {}), ("text", {}), (vectors.CP_PUSH, {"data_coding": 0x00})):
        with _pytest.raises(_Error):
            push_message(bad, **kwargs)
