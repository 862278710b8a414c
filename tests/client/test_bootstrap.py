"""Bootstrapping a simulated device from CP, DM-bootstrap and TNDS documents."""

import base64

import pytest

from dmgateway.client.bootstrap import BootstrapError, account_from_tree, apply_bootstrap
from dmgateway.client.tree import auth_data_path
from dmgateway.codec import WBXML, XML, encode_message
from dmgateway.codec import syncml as sm
from dmgateway.codec.prov import Characteristic, Parm, ProvDoc, encode_wbxml, encode_xml
from dmgateway.codec.xml import parse as parse_xml
from dmgateway.notify import wsp
from dmgateway.tree.standard import standard_tree

URL = "https://dms.example.com/dm"
SRV_NONCE = b"\x01\x02\x03\x04"


def w7(server_id="com.example.dms", srvcred_first=False):
    clcred = Characteristic("APPAUTH", [
        Parm("AAUTHLEVEL", "APPSRV"), Parm("AAUTHTYPE", "DIGEST"),
        Parm("AAUTHNAME", "dev01"), Parm("AAUTHSECRET", "cl-secret")])
    srvcred = Characteristic("APPAUTH", [
        Parm("AAUTHLEVEL", "CLIENT"), Parm("AAUTHTYPE", "DIGEST"),
        Parm("AAUTHNAME", server_id), Parm("AAUTHSECRET", "srv-secret"),
        Parm("AAUTHDATA", base64.b64encode(SRV_NONCE).decode())])
    auths = [srvcred, clcred] if srvcred_first else [clcred, srvcred]
    app = Characteristic("APPLICATION", [
        Parm("APPID", "w7"), Parm("PROVIDER-ID", server_id), Parm("NAME", "Example DMS")],
        [Characteristic("APPADDR", [Parm("ADDR", URL)])] + auths)
    return ProvDoc(characteristics=[app])


def device():
    return standard_tree({"DevId": "IMEI:490154203237518"})


@pytest.mark.parametrize("encode, content_type", [
    (encode_wbxml, "application/vnd.wap.connectivity-wbxml"),
    (encode_xml, "text/vnd.wap.connectivity-xml"),
    (encode_wbxml, None),  # sniffed
])
def test_cp_w7_gives_an_account(encode, content_type):
    tree = device()
    account = apply_bootstrap(tree, encode(w7()), content_type)
    assert (account.server_id, account.server_url, account.name) == (
        "com.example.dms", URL, "acc1")
    assert account.device_id == "IMEI:490154203237518"
    assert (account.client.scheme, account.client.name, account.client.secret) == (
        "md5", "dev01", "cl-secret")
    assert (account.server.scheme, account.server.name, account.server.secret) == (
        "md5", "com.example.dms", "srv-secret")
    assert account.server.nonce == SRV_NONCE and account.client.nonce == b""
    assert tree.read("./DMAcc/acc1/Name").value == "Example DMS"


def test_cp_in_a_push_and_appauth_order():
    tree = device()
    push = wsp.encode_push(wsp.PushPDU(wsp.CT_CONNECTIVITY_WBXML, encode_wbxml(w7(srvcred_first=True)),
                                       app_id=wsp.APP_SYNCML_DM))
    account = apply_bootstrap(tree, push)
    assert account.client.name == "dev01" and account.server.nonce == SRV_NONCE
    # the session mirrors nonces into the entry of the right level
    assert auth_data_path(tree, account, "SRVCRED") == "./DMAcc/acc1/AppAuth/1/AAuthData"
    assert auth_data_path(tree, account, "CLCRED") == "./DMAcc/acc1/AppAuth/2/AAuthData"


DMACC_TNDS = (
    "<MgmtTree xmlns='syncml:dmddf1.2'><VerDTD>1.2</VerDTD>"
    "<Node><NodeName>boot</NodeName><RTProperties><Format><node/></Format>"
    "<Type><DDFName>urn:oma:mo:oma-dm-dmacc:1.0</DDFName></Type></RTProperties>"
    "<Node><NodeName>AppID</NodeName><Value>w7</Value></Node>"
    "<Node><NodeName>ServerID</NodeName><Value>org.boot</Value></Node>"
    "<Node><NodeName>AppAddr</NodeName><Node><NodeName>1</NodeName>"
    "<Node><NodeName>Addr</NodeName><Value>http://127.0.0.1:1/dm</Value></Node>"
    "<Node><NodeName>AddrType</NodeName><Value>URI</Value></Node></Node></Node>"
    "<Node><NodeName>AppAuth</NodeName><Node><NodeName>1</NodeName>"
    "<Node><NodeName>AAuthLevel</NodeName><Value>CLCRED</Value></Node>"
    "<Node><NodeName>AAuthType</NodeName><Value>BASIC</Value></Node>"
    "<Node><NodeName>AAuthName</NodeName><Value>dev</Value></Node>"
    "<Node><NodeName>AAuthSecret</NodeName><Value>pw</Value></Node></Node></Node>"
    "</Node></MgmtTree>"
)


def bootstrap_message(body):
    hdr = sm.SyncHdr(session_id="1", msg_id="1", target=sm.LocRef("IMEI:490154203237518"),
                     source=sm.LocRef("org.boot"))
    return sm.SyncML(hdr=hdr, body=body, final=True)


@pytest.mark.parametrize("encoding", [XML, WBXML])
def test_dm_bootstrap_message_with_tnds_at_the_inbox(encoding):
    tnds = parse_xml(DMACC_TNDS.encode())
    msg = bootstrap_message([sm.Add(cmd_id="1", items=[sm.Item(
        target=sm.LocRef("./Inbox"),
        meta=sm.Meta(format="xml", type="application/vnd.syncml.dmtnds+xml"), data=tnds)])])
    tree = device()
    account = apply_bootstrap(tree, encode_message(msg, encoding),
                              "application/vnd.syncml.dm+" + encoding)
    assert (account.name, account.server_id, account.server_url) == (
        "boot", "org.boot", "http://127.0.0.1:1/dm")
    assert (account.client.scheme, account.client.name, account.client.secret) == (
        "basic", "dev", "pw")
    assert account.server.scheme == "none"


def test_dm_bootstrap_with_plain_node_data_in_an_atomic():
    items = [("./DMAcc/plain", None, "node", "urn:oma:mo:oma-dm-dmacc:1.0"),
             ("./DMAcc/plain/ServerID", "org.plain", "chr", None),
             ("./DMAcc/plain/AppAddr/1/Addr", "http://x/dm", "chr", None),
             ("./DMAcc/plain/AppAuth/1/AAuthLevel", "SRVCRED", "chr", None),
             ("./DMAcc/plain/AppAuth/1/AAuthType", "DIGEST", "chr", None),
             ("./DMAcc/plain/AppAuth/1/AAuthData", "AQID", "b64", None)]
    adds = [sm.Add(cmd_id=str(n), items=[sm.Item(target=sm.LocRef(uri),
                                                 meta=sm.Meta(format=fmt, type=mtype), data=data)])
            for n, (uri, data, fmt, mtype) in enumerate(items, 2)]
    msg = bootstrap_message([sm.Atomic(cmd_id="1", commands=adds)])
    tree = device()
    account = apply_bootstrap(tree, encode_message(msg, XML))
    assert (account.server_id, account.server_url) == ("org.plain", "http://x/dm")
    assert account.server.scheme == "md5" and account.server.nonce == b"\x01\x02\x03"


def test_tnds_document_alone():
    tree = device()
    account = apply_bootstrap(tree, DMACC_TNDS.encode(), "application/vnd.syncml.dmtnds+xml")
    assert account.server_id == "org.boot"
    again = account_from_tree(tree, "./DMAcc/boot", device_id="other")
    assert again.device_id == "other" and again.client == account.client


@pytest.mark.parametrize("data, content_type", [
    (b"<wap-provisioningdoc/>", "text/vnd.wap.connectivity-xml"),  # no w7
    (b"\x03\x0b\x6a\x00\x45\x01", None),  # cut WBXML
    (b"<SyncML><broken", "application/vnd.syncml.dm+xml"),
    (b"<MgmtTree xmlns='syncml:dmddf1.2'><VerDTD>1.2</VerDTD></MgmtTree>", None),  # no account
    (b"", None),
])
def test_bad_documents_change_nothing(data, content_type):
    tree = device()
    before = tree.walk(".", checked=False)
    with pytest.raises(BootstrapError):
        apply_bootstrap(tree, data, content_type)
    assert tree.walk(".", checked=False) == before
