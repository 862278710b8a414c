"""SEC/MAC of bootstrap documents against the dm-bootstrap-cp §3.3-3.5 vectors."""

import pytest

from dmgateway.bootstrap import sec
from tests.bootstrap import vectors as v


def test_imsi_keys():
    assert sec.imsi_key(v.IMSI) == v.IMSI_KEY
    assert sec.imsi_key(v.IMSI_EVEN) == v.IMSI_EVEN_KEY


@pytest.mark.parametrize("method, pin, imsi, mac", v.CP_MACS)
def test_cp_vectors(method, pin, imsi, mac):
    assert sec.compute_mac(method, v.CP_DOC, pin=pin, imsi=imsi) == mac
    assert sec.verify_mac(method, v.CP_DOC, mac.lower(), pin=pin, imsi=imsi)
    assert not sec.verify_mac(method, v.CP_DOC[:-1], mac, pin=pin, imsi=imsi)


def test_dm_vector():
    assert sec.compute_mac("NETWPIN", v.DM_DOC, imsi=v.IMSI) == v.DM_NETWPIN_MAC


def test_userpinmac():
    assert sec.userpinmac_code(v.USERPINMAC_PIN, v.CP_DOC) == v.USERPINMAC_CODE
    assert sec.verify_mac("USERPINMAC", v.CP_DOC, None, pin=v.USERPINMAC_CODE)
    assert not sec.verify_mac("USERPINMAC", v.CP_DOC, None, pin="1234587282")
    assert not sec.verify_mac("USERPINMAC", v.CP_DOC, None, pin="12345")  # MAC digits missing
    with pytest.raises(sec.SecurityError, match="5 to 32"):
        sec.compute_mac("USERPINMAC", v.CP_DOC, pin="1234")


def test_wrong_key_is_rejected():
    assert not sec.verify_mac("USERPIN", v.CP_DOC, v.CP_MACS[1][3], pin="1235")
    assert not sec.verify_mac("NETWPIN", v.CP_DOC, v.CP_MACS[0][3], imsi="001010123456788")
    assert not sec.verify_mac("USERPIN", v.CP_DOC, "not hex \u00e9", pin="1234")
    assert not sec.verify_mac("USERPIN", v.CP_DOC, v.CP_MACS[1][3], pin=None)


def test_method_names_and_codes():
    assert [sec.method_code(n) for n in ("NETWPIN", "userpin", "USERNETWPIN", "USERPINMAC")] == [0, 1, 2, 3]
    assert sec.method_name("NETWORKID") == "NETWPIN"
    assert sec.method_name("USERPIN_NETWORKID") == "USERNETWPIN"
    assert sec.method_name(3) == "USERPINMAC"
    assert sec.method_name("1") == "USERPIN"
    for bad in ("PIN", 4, None, True):
        with pytest.raises(sec.SecurityError):
            sec.method_name(bad)


@pytest.mark.parametrize("method, pin, imsi, reason", [
    ("NETWPIN", None, None, "IMSI"),
    ("NETWPIN", None, "12345", "IMSI"),
    ("NETWPIN", None, "00101012345678x", "IMSI"),
    ("USERPIN", None, None, "needs a PIN"),
    ("USERPIN", "12a4", None, "digits"),
    ("USERPIN", "\u0661\u0662\u0663", None, "digits"),  # Arabic-Indic digits are not ASCII
    ("USERPIN", "1" * 33, None, "1 to 32"),
    ("USERNETWPIN", "1234", None, "IMSI"),
])
def test_refusals(method, pin, imsi, reason):
    with pytest.raises(sec.SecurityError, match=reason):
        sec.key_for(method, pin=pin, imsi=imsi)
