"""libwbxml's ``wbxml2xml`` decodes every bootstrap document the gateway generates to the same content.

DM profile: DM 1.2 layout, DM 1.1 layout (SyncML 1.1 public id), and the
TNDS form (libwbxml expands the embedded WBXML TNDS into an inline
``MgmtTree`` and names it ``+xml``: compared as the tree we embedded).  CP
profile: w7 alone, with NAPDEF, with PXLOGICAL/PXPHYSICAL.
"""

import pytest

from dmgateway.bootstrap import cpprofile, dmprofile
from dmgateway.codec import prov, xml
from dmgateway.codec.element import Node
from dmgateway.tree.tnds import read_tnds
from tests.bootstrap.test_profiles import ACCOUNT, NAPDEF
from tests.interop.test_libwbxml import pytestmark, wbxml2xml  # noqa: F401 - skip without libwbxml

PROXY = {"PROXY-ID": "PX1", "NAME": "Proxy", "PXPHYSICAL": [{"PHYSICAL-PROXY-ID": "P1", "PXADDR": "10.0.0.1",
                                                             "PXADDRTYPE": "IPV4", "TO-NAPID": "NAP1"}]}


@pytest.mark.parametrize("layout", dmprofile.LAYOUTS)
def test_dm_profile(layout, tmp_path):
    msg = dmprofile.build_message(ACCOUNT, layout=layout)
    text = wbxml2xml(dmprofile.encode(msg), tmp_path)
    assert b"<SyncML" in text
    assert xml.decode(text) == msg


def test_dm_profile_as_tnds(tmp_path):
    msg = dmprofile.build_message(ACCOUNT, tnds=True)
    text = wbxml2xml(dmprofile.encode(msg), tmp_path)
    back = xml.decode(text)
    (ours,), (theirs,) = msg.body[0].items, back.body[0].items
    assert isinstance(theirs.data, Node) and theirs.data.name == "MgmtTree"
    assert theirs.data == read_tnds(ours.data, ours.meta.type)
    assert theirs.target == ours.target
    assert back.hdr == msg.hdr


@pytest.mark.parametrize("extra", [{}, {"napdef": NAPDEF}, {"napdef": NAPDEF, "proxy": PROXY}],
                         ids=["w7", "napdef", "proxy"])
def test_cp_profile(extra, tmp_path):
    doc = cpprofile.build_document(ACCOUNT, **extra)
    text = wbxml2xml(prov.encode_wbxml(doc), tmp_path)
    assert b"wap-provisioningdoc" in text
    assert prov.decode_xml(text) == doc
