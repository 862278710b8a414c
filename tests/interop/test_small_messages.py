"""Small client MaxMsgSize against the REAL daemon: a job never fails for it.

A device announcing 1024 or 2048 bytes (XML and WBXML) gets a job of many
small Replaces and one 6,000-byte value, md5 both ways and a long public URL
(RespURI of 86 bytes in every message, Source and TargetRef of 50): commands that find no room wait for the next
message, the large value goes in chunks that fit, and every message the
gateway sends honours the limit.  Only a value above the device's MaxObjSize
fails the command (``too_large``).
"""

import pytest

from dmgateway.codec import encode_message
from tests.interop.daemon import Daemon
from tests.interop.test_client_e2e import new_device, run_job, statuses

SMALL = ["value %02d " % n + "s" * 140 for n in range(15)]
LARGE = "".join("%05d;" % n for n in range(1000))  # 6,000 bytes


LONG_PATH = "/oma-dm/v1/device-management"  # public URL of 50 characters


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("small-messages"))
    # a long public URL: the RespURI in every header leaves less room
    d.url = "http://127.0.0.1:%d%s" % (d.http_port, LONG_PATH)
    d.extra_ini["http.ini"] = "[http]\nenabled = true\nendpoint = tcp:%d:interface=127.0.0.1\n" \
        "path = %s\n" % (d.http_port, LONG_PATH)
    d._write_config()
    d.start()
    yield d
    d.stop()


def job_commands():
    commands = [{"op": "Replace", "target": "./Vendor/S%02d" % n, "data": value}
                for n, value in enumerate(SMALL)]
    commands.insert(7, {"op": "Replace", "target": "./Vendor/Large", "data": LARGE})
    return commands


def prepared(daemon, encoding, max_msg_size, max_obj_size=None):
    device_id, session = new_device(daemon, encoding, max_msg_size=max_msg_size,
                                    max_obj_size=max_obj_size)
    for n in range(15):
        session.tree.set("./Vendor/S%02d" % n, "")
    session.tree.set("./Vendor/Large", "")
    return device_id, session


@pytest.mark.parametrize("max_msg_size", [1024, 2048])
@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_many_small_commands_and_one_large_value(daemon, encoding, max_msg_size):
    device_id, session = prepared(daemon, encoding, max_msg_size)
    job = run_job(daemon, device_id, session, {"commands": job_commands()},
                  max_messages=400)
    assert job["state"] == "done", job
    assert statuses(job) == [200] * 16
    for n, value in enumerate(SMALL):
        assert session.tree.read("./Vendor/S%02d" % n).value == value
    assert session.tree.read("./Vendor/Large").value == LARGE
    incoming = [encode_message(m, encoding) for d, m in session.transcript if d == "in"]
    assert max(len(m) for m in incoming) <= max_msg_size
    assert session.counters["oversized_messages"] == 0


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_only_a_value_above_max_obj_size_fails(daemon, encoding):
    device_id, session = prepared(daemon, encoding, 1024, max_obj_size=4000)
    job = run_job(daemon, device_id, session, {"commands": job_commands()}, max_messages=400)
    assert job["state"] == "failed", job
    codes = statuses(job)
    assert codes[7] == 413 and codes[:7] + codes[8:] == [200] * 15, codes
    assert job["error"]["code"] == "too_large"
    assert "MaxObjSize" in job["error"]["message"]
    assert session.tree.read("./Vendor/S14").value == SMALL[14]
