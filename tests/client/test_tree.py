"""The client's tree: the real :mod:`dmgateway.tree` with the account written in.

The tree itself is tested in ``tests/tree``; here only what the client adds:
:func:`default_tree` for an :class:`Account` and the paths of its nonces.
"""

import pytest

from dmgateway.client.tree import (
    ManagementTree,
    TreeError,
    client_nonce_path,
    default_tree,
    server_nonce_path,
)
from dmgateway.tree import ManagementTree as RealTree
from dmgateway.tree.standard import find_accounts

from .support import CLIENT_NONCE, SERVER_ID, SERVER_NONCE, SERVER_URL, make_account


@pytest.fixture
def tree():
    return default_tree(make_account(), devinfo={"Man": "ExampleCorp"},
                        devdetail={"SwV": "4.2.1"})


def test_it_is_the_real_tree(tree):
    assert ManagementTree is RealTree and isinstance(tree, RealTree)


def test_standard_objects(tree):
    assert tree.read("./DevInfo/DevId").value == make_account().device_id
    assert tree.read("./DevInfo/Man").value == "ExampleCorp"
    assert tree.read("./DevDetail/SwV").value == "4.2.1"
    assert tree.read("./DevInfo").type == "urn:oma:mo:oma-dm-devinfo:1.0"
    assert tree.read("./Inbox").type == "urn:oma:mo:oma-dm-inbox:1.0"
    assert tree.get("./DevDetail/URI/MaxDepth", server=SERVER_ID).value == "0"


def test_account_is_written_as_dmacc(tree):
    assert find_accounts(tree, SERVER_ID) == ["./DMAcc/example"]
    base = "./DMAcc/example/"
    assert tree.read(base + "AppAddr/1/Addr").value == SERVER_URL
    assert tree.read(base + "AAuthPref").value == "DIGEST"
    assert [tree.read(base + "AppAuth/%d/AAuthLevel" % i).value for i in (1, 2)] == [
        "CLCRED", "SRVCRED"]
    assert tree.read(client_nonce_path(make_account())).value == CLIENT_NONCE
    assert tree.read(server_nonce_path(make_account())).value == SERVER_NONCE
    assert tree.get("./DMAcc/example?prop=ACL", server=SERVER_ID).value == (
        "Get=%s&Replace=%s&Delete=%s" % (SERVER_ID, SERVER_ID, SERVER_ID))


def test_acl_is_checked_for_the_server(tree):
    assert tree.get("./DMAcc/example/Name", server=SERVER_ID).value == ""
    with pytest.raises(TreeError) as info:
        tree.get("./DMAcc/example/Name", server="org.other")
    assert info.value.status == 425
    with pytest.raises(TreeError) as info:  # secrets are never readable: AccessType
        tree.get("./DMAcc/example/AppAuth/1/AAuthSecret", server=SERVER_ID)
    assert info.value.status == 405


def test_limits_reach_devdetail():
    tree = default_tree(make_account(), max_depth=6, max_tot_len=127, max_seg_len=20)
    assert tree.read("./DevDetail/URI/MaxDepth").value == "6"
    assert tree.read("./DevDetail/URI/MaxTotLen").value == "127"
    with pytest.raises(TreeError) as info:
        tree.get("./" + "x" * 21)
    assert info.value.status == 414
