"""DM- and CP-profile documents: what they contain and what the simulated device makes of them."""

import pytest

from dmgateway.bootstrap import cpprofile, dmprofile
from dmgateway.bootstrap.dmprofile import AuthEntry, ConItem, DMAccount
from dmgateway.client.bootstrap import apply_bootstrap
from dmgateway.codec import decode_message, prov
from dmgateway.tree.standard import standard_tree
from tests.bootstrap import vectors as v

ACCOUNT = DMAccount(
    server_id="com.example.dms", address="https://dms.example.com/dm",
    device_id="IMEI:490154203237518",
    client=AuthEntry("md5", "dmclient01", "s3cr3t!", bytes(range(1, 17))),
    server=AuthEntry("md5", "com.example.dms", "srvPass123", bytes.fromhex("a1b2c3d4e5f60718")),
    name="example", display_name="Example DMS",
)


def leaves(tree, base):
    out = {}
    depth = len(base.split("/")) - 1
    for info in tree.walk(base, checked=False):
        if info.format != "node":
            out["/".join(info.segments[depth:])] = tree.read("./" + "/".join(info.segments)).value
    return out


def test_spec_example_message_is_byte_exact():
    """The §2.1 example (only the CLCRED leaves) comes out as the spec's 553 bytes."""
    example = DMAccount(server_id="com.example.dms", address="https://dms.example.com/dm",
                        device_id="IMEI:490154203237518",
                        client=AuthEntry("md5", "dmclient01", "s3cr3t!"),
                        server=AuthEntry("none", "", ""), name="example")
    msg = dmprofile.build_message(example)
    add = msg.body[0]
    keep = [i for i in add.items if not i.target.loc_uri.endswith("AAuthPref")]
    add.items[:] = keep
    add.items[0].meta.type = None  # the example gives the account node no Type
    assert dmprofile.encode(msg) == v.DM_DOC


@pytest.mark.parametrize("tnds", [False, True])
def test_dm_profile_applies_to_the_simulated_device(tnds):
    data = dmprofile.encode(dmprofile.build_message(ACCOUNT, tnds=tnds))
    msg, encoding = decode_message(data)
    assert encoding == "wbxml"
    assert (msg.hdr.session_id, msg.hdr.msg_id, msg.final) == ("0", "0", True)
    assert msg.hdr.cred is None and msg.hdr.target.loc_uri == ACCOUNT.device_id
    tree = standard_tree()
    account = apply_bootstrap(tree, data, "application/vnd.syncml.dm+wbxml")
    assert (account.server_id, account.server_url) == (ACCOUNT.server_id, ACCOUNT.address)
    assert (account.client.scheme, account.client.name, account.client.secret, bytes(account.client.nonce)) == \
        ("md5", "dmclient01", "s3cr3t!", ACCOUNT.client.nonce)
    assert (account.server.name, account.server.secret, bytes(account.server.nonce)) == \
        ("com.example.dms", "srvPass123", ACCOUNT.server.nonce)
    got = leaves(tree, "./DMAcc/example")
    expected = {path: value for path, value, _ in dmprofile.account_leaves(ACCOUNT)}
    expected["AppAuth/1/AAuthData"] = ACCOUNT.client.nonce
    expected["AppAuth/2/AAuthData"] = ACCOUNT.server.nonce
    assert got == expected
    if tnds:  # the ACL travelled inside the TNDS
        assert tree.info("./DMAcc/example").acl == "Get=com.example.dms&Replace=com.example.dms&Delete=com.example.dms"


def test_dm11_layout():
    msg = dmprofile.build_message(ACCOUNT, layout=dmprofile.LAYOUT_DM11)
    assert msg.hdr.ver_proto == "DM/1.1"
    uris = {i.target.loc_uri: i.data for i in msg.body[0].items}
    base = "./SyncML/DMAcc/example/"
    assert uris[base + "ServerId"] == "com.example.dms"
    assert uris[base + "UserName"] == "dmclient01"
    assert uris[base + "ClientPW"] == "s3cr3t!"
    assert uris[base + "ServerPW"] == "srvPass123"
    assert uris[base + "AuthPref"] == "syncml:auth-md5"
    data = dmprofile.encode(msg)
    assert decode_message(data)[0].hdr.ver_dtd == "1.1"


def test_connectivity_items_follow_the_account():
    account = DMAccount(**{**ACCOUNT.__dict__, "pref_con_ref": "./ConnMO/nap1",
                           "connectivity": (ConItem("./ConnMO/nap1", None, "node"),
                                            ConItem("./ConnMO/nap1/Addr", "internet.example"))})
    items = dmprofile.build_message(account).body[0].items
    assert [i.target.loc_uri for i in items[-2:]] == ["./ConnMO/nap1", "./ConnMO/nap1/Addr"]
    assert any(i.target.loc_uri.endswith("/PrefConRef") and i.data == "./ConnMO/nap1" for i in items)


NAPDEF = {"NAPID": "NAP1", "BEARER": "GSM-GPRS", "NAME": "Example APN",
          "NAP-ADDRESS": "internet.example", "NAP-ADDRTYPE": "APN",
          "NAPAUTHINFO": {"AUTHTYPE": "PAP", "AUTHNAME": "u", "AUTHSECRET": "p"}}


def test_cp_document_matches_the_spec_mapping():
    """§5.4 → §5.3: the simulator's own w7 mapping gives the tree the spec lists."""
    account = DMAccount(**{**ACCOUNT.__dict__, "port": 443})
    doc = cpprofile.build_document(account, napdef=NAPDEF)
    assert [c.type for c in doc.characteristics] == ["NAPDEF", "APPLICATION"]
    (app,) = prov.find_w7(doc)
    assert app.values("TO-NAPID") == ["NAP1"] and app.has("INIT")
    assert [a.get("AAUTHLEVEL") for a in app.children("APPAUTH")] == ["APPSRV", "CLIENT"]
    assert app.children("APPAUTH")[0].get("AAUTHDATA") == "AQIDBAUGBwgJCgsMDQ4PEA=="
    assert app.children("APPAUTH")[1].get("AAUTHDATA") == "obLD1OX2Bxg="
    data = prov.encode_wbxml(doc)
    tree = standard_tree()
    result = apply_bootstrap(tree, data, "application/vnd.wap.connectivity-wbxml", names=["acc1"])
    assert result.server_url == "https://dms.example.com/dm"
    assert leaves(tree, "./DMAcc/acc1") == {
        "AppID": "w7", "ServerID": "com.example.dms", "Name": "Example DMS", "PrefConRef": "NAP1",
        "AppAddr/1/Addr": "https://dms.example.com/dm", "AppAddr/1/AddrType": "URI",
        "AppAddr/1/Port/1/PortNbr": "443",
        "AppAuth/1/AAuthLevel": "CLCRED", "AppAuth/1/AAuthType": "DIGEST",
        "AppAuth/1/AAuthName": "dmclient01", "AppAuth/1/AAuthSecret": "s3cr3t!",
        "AppAuth/1/AAuthData": bytes(range(1, 17)),
        "AppAuth/2/AAuthLevel": "SRVCRED", "AppAuth/2/AAuthType": "DIGEST",
        "AppAuth/2/AAuthName": "com.example.dms", "AppAuth/2/AAuthSecret": "srvPass123",
        "AppAuth/2/AAuthData": bytes.fromhex("a1b2c3d4e5f60718"),
    }
    assert tree.info("./DMAcc/acc1").acl == "Get=com.example.dms&Replace=com.example.dms&Delete=com.example.dms"
    # and back: the reverse mapping reads the same account out of the document
    back = cpprofile.account_from_document(prov.decode_wbxml(data), ACCOUNT.device_id)
    assert back == DMAccount(**{**account.__dict__, "name": "dmgateway", "pref_con_ref": "NAP1"})


def test_cp_proxy_takes_precedence_as_the_reference():
    doc = cpprofile.build_document(ACCOUNT, napdef=NAPDEF, proxy={
        "PROXY-ID": "PX1", "NAME": "proxy", "PXPHYSICAL": [{"PHYSICAL-PROXY-ID": "P1", "PXADDR": "10.0.0.1",
                                                            "PXADDRTYPE": "IPV4", "TO-NAPID": "NAP1"}]})
    assert [c.type for c in doc.characteristics] == ["PXLOGICAL", "NAPDEF", "APPLICATION"]
    assert prov.find_w7(doc)[0].values("TO-PROXY") == ["PX1"]
    assert prov.decode_wbxml(prov.encode_wbxml(doc)) == doc


@pytest.mark.parametrize("napdef, reason", [
    ("NAP1", "must be an object"),
    ({"BEARER": "GSM-GPRS"}, "needs a NAPID"),
    ({"NAPID": "N", "bearer": "x"}, "upper-case"),
    ({"NAPID": "N", "BEARER": 5}, "a value is text"),
    ({"NAPID": "N", "NAME": ""}, "1 to 1024"),
    ({"NAPID": "N", "NAME": "a\x01b"}, "control"),
    ({"NAPID": "N", "NAME": "a\ud800"}, "control"),
    ({"NAPID": "N", "PXPHYSICAL": [{"A": "b"}] * 17}, "1 to 16"),
    ({"NAPID": "N", "PXPHYSICAL": []}, "1 to 16"),
    ({"NAPID": "N", "A": {"B": {"C": {"D": {"E": {}}}}}}, "too deeply"),
    ({"NAPID": "N", **{"P%d" % i: "x" for i in range(70)}}, "more than 64"),
])
def test_cp_refuses_bad_objects(napdef, reason):
    with pytest.raises(cpprofile.CPError, match=reason):
        cpprofile.build_document(ACCOUNT, napdef=napdef)


def test_cp_document_without_w7():
    with pytest.raises(cpprofile.CPError):
        cpprofile.account_from_document(prov.ProvDoc())
