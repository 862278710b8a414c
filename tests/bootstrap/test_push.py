"""The WSP push carrying a bootstrap (dm-bootstrap-cp §4)."""

import pytest

from dmgateway.bootstrap import BootstrapPushError, push_pdu, read_push, secure
from dmgateway.bootstrap.sec import SecurityError
from dmgateway.notify import wsp
from tests.bootstrap import vectors as v


def test_cp_push_is_the_spec_bytes():
    boot = secure("cp", v.CP_DOC, "USERPIN", pin="1234")
    assert push_pdu(boot) == v.CP_PUSH
    assert read_push(v.CP_PUSH) == boot


def test_dm_push_header_is_the_spec_bytes():
    boot = secure("dm", v.DM_DOC, "NETWPIN", imsi=v.IMSI)
    pdu = push_pdu(boot)
    assert pdu == v.DM_PUSH_HEAD + v.DM_DOC
    back = read_push(pdu)
    assert (back.profile, back.sec, back.mac, back.document) == ("dm", "NETWPIN", v.DM_NETWPIN_MAC, v.DM_DOC)
    assert wsp.application_id_name(wsp.parse_push(pdu)) == "x-wap-application:syncml.dm"


def test_userpinmac_gives_the_user_code():
    boot = secure("cp", v.CP_DOC, "USERPINMAC", pin=v.USERPINMAC_PIN)
    assert boot.user_code == v.USERPINMAC_CODE
    assert read_push(push_pdu(boot)).sec == "USERPINMAC"


def test_no_security_has_no_parameters():
    boot = secure("cp", v.CP_DOC, "none")
    assert (boot.sec, boot.mac) == (None, None)
    pdu = push_pdu(boot)
    assert pdu[:4] == bytes([1, 6, 1, 0xB6])
    assert read_push(pdu) == boot


def test_textual_sec_names_are_read():
    pdu = wsp.encode_push(wsp.PushPDU("application/vnd.syncml.dm+wbxml", v.DM_DOC,
                                      parameters=(("SEC", "NETWORKID"), ("MAC", v.DM_NETWPIN_MAC))))
    assert read_push(pdu).sec == "NETWPIN"


@pytest.mark.parametrize("data", [b"", b"\x01\x06", wsp.encode_push(wsp.PushPDU(0x44, b"x", app_id=7)),
                                  wsp.encode_push(wsp.PushPDU(0x36, b"x", parameters=(("SEC", 9),)))])
def test_not_bootstrap_pushes(data):
    with pytest.raises(BootstrapPushError):
        read_push(data)


def test_missing_pin_is_a_security_error():
    with pytest.raises(SecurityError):
        secure("dm", v.DM_DOC, "USERPIN")
