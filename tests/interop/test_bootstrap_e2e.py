"""DM-4 / CP-1 end to end: the real daemon pushes bootstraps through the npm ``smpp`` SMSC simulator.

The REST API asks for a bootstrap; the daemon submits it as concatenated
WAP Push SMS to the simulator; the simulated device takes the parts the
simulator received, verifies the SEC/MAC (a wrong PIN or IMSI: rejected,
nothing applied), applies the document to its tree and opens a session
(Alert 1201) with the account it got, which authenticates both ways and
completes a job.
"""

import os
import urllib.parse

from dmgateway.bootstrap import read_push
from dmgateway.client import ClientSession
from dmgateway.client.bootstrap import BootstrapError, accept_bootstrap
from dmgateway.notify import sms
from dmgateway.tree.standard import find_accounts, standard_tree
from tests.interop.daemon import Daemon, run_client
from tests.interop.test_notify_e2e import NOTIFY_FAST, Simulator, smpp_ini, wait_until

IMSI = "001010123456789"
GET_DEVID = {"commands": [{"op": "Get", "target": "./DevInfo/DevId"}], "notify": "none"}


def device_account(msisdn, imsi=None):
    return {
        "server_id": "dmgw-e2e",
        "client_auth": {"type": "md5", "name": "dev-boot", "secret": "factory-secret"},
        "server_auth": {"type": "md5", "name": "dmgw-e2e", "secret": "factory-server"},
        "msisdn": msisdn,
        "imsi": imsi,
    }


def receive(sim, msisdn):
    """The SMS parts of one push as the simulator got them, and the first part's message id."""
    parts, ids, inbox = [], [], sms.Reassembler()
    while True:
        fields = sim.wait("SM ").split()
        ids.append(fields[1])
        assert fields[2] == msisdn.lstrip("+")
        assert (fields[3], fields[4]) == ("64", "4")  # UDHI, 8-bit
        part = bytes.fromhex(fields[6])
        assert len(part) <= 140
        parts.append(part)
        if inbox.add(sms.parse_user_data(part)) is not None:
            return parts, ids[0]


def bootstrap(gw, device_id, body):
    return gw.call("POST", "/devices/%s/bootstrap" % (urllib.parse.quote(device_id, safe=""),), body)


def session_completes_job(gw, device_id, account, tree):
    job_id = gw.create_job(device_id, GET_DEVID)
    session = ClientSession(account, tree=tree, random_bytes=os.urandom)
    run_client(session, alert=1201)
    assert session.outcome == "completed", session.log
    assert session.server_authenticated
    done = gw.job(job_id)
    assert done["state"] == "done", done
    assert done["results"][0]["data"] == device_id


def start(tmp_path):
    sim = Simulator()
    gw = Daemon(tmp_path, extra_ini={"smpp.ini": smpp_ini(sim.port)}, gateway_extra=NOTIFY_FAST)
    try:
        gw.start()
        sim.wait("BIND bind_transceiver gw ok")
    except BaseException:
        gw.stop()
        sim.stop()
        raise
    return sim, gw


def test_cp_bootstrap_pushed_through_the_smsc_simulator(tmp_path):
    sim, gw = start(tmp_path)
    try:
        device_id, msisdn = "IMEI:350000000000201", "+447700900201"
        assert gw.put_device(device_id, device_account(msisdn))[0] == 201
        status, body = bootstrap(gw, device_id, {
            "profile": "cp", "sec": "USERPIN", "pin": "2468",
            "napdef": {"NAPID": "NAP1", "BEARER": "GSM-GPRS", "NAP-ADDRESS": "internet.example",
                       "NAP-ADDRTYPE": "APN"}})
        assert status == 202, body
        assert (body["state"], body["profile"], body["sec"]) == ("queued", "cp", "USERPIN")
        parts, message_id = receive(sim, msisdn)
        assert len(parts) >= 2  # concatenated
        tree = standard_tree({"DevId": device_id})
        try:
            accept_bootstrap(tree, parts, pin="2469")
            raise AssertionError("a wrong PIN must be rejected")
        except BootstrapError:
            pass
        assert find_accounts(tree) == []  # nothing applied
        account = accept_bootstrap(tree, parts, pin="2468")
        assert (account.server_id, account.server_url) == ("dmgw-e2e", gw.url)
        assert tree.read(find_accounts(tree)[0] + "/PrefConRef").value == "NAP1"
        session_completes_job(gw, device_id, account, tree)

        # tracked like a notification: sent, then delivered by the receipt
        sim.send("receipt " + message_id)
        device = wait_until(lambda: (lambda d: d if d["bootstraps"][0]["state"] == "delivered" else None)(
            gw.call("GET", "/devices/" + urllib.parse.quote(device_id, safe=""))[1]))
        assert (device["bootstraps"][0]["id"], device["bootstraps"][0]["profile"]) == (body["id"], "cp")
        assert device["bootstraps"][0]["message_id"] == message_id
        log = gw.log()
        assert "2468" not in log and account.client.secret not in log
        assert "pushed notification %d to %s by sms" % (body["id"], device_id) in log
        assert "Unable to format" not in log
    finally:
        gw.stop()
        sim.stop()


def test_dm_bootstrap_netwpin_then_userpin(tmp_path):
    sim, gw = start(tmp_path)
    try:
        device_id, msisdn = "IMEI:350000000000202", "+447700900202"
        assert gw.put_device(device_id, device_account(msisdn, IMSI))[0] == 201

        # NETWPIN: the key is the SIM's IMSI
        status, body = bootstrap(gw, device_id, {"profile": "dm", "sec": "NETWPIN"})
        assert status == 202, body
        parts, _ = receive(sim, msisdn)
        push = read_push(_whole(parts))
        assert (push.profile, push.sec, push.mac) == ("dm", "NETWPIN", body["mac"])
        tree = standard_tree({"DevId": device_id})
        try:
            accept_bootstrap(tree, parts, imsi="001010123456780")
            raise AssertionError("another card's IMSI must be rejected")
        except BootstrapError:
            pass
        assert find_accounts(tree) == []
        account = accept_bootstrap(tree, parts, imsi=IMSI)
        session_completes_job(gw, device_id, account, tree)

        # USERPIN: a new bootstrap re-keys the account; the old one stops working
        status, body = bootstrap(gw, device_id, {"profile": "dm", "sec": "USERPIN", "pin": "97531"})
        assert status == 202, body
        parts, _ = receive(sim, msisdn)
        fresh = standard_tree({"DevId": device_id})
        try:
            accept_bootstrap(fresh, parts, pin="13579")
            raise AssertionError("a wrong PIN must be rejected")
        except BootstrapError:
            pass
        assert find_accounts(fresh) == []
        renewed = accept_bootstrap(fresh, parts, pin="97531")
        assert renewed.client.secret != account.client.secret
        session_completes_job(gw, device_id, renewed, fresh)
        stale = ClientSession(account, tree=tree, random_bytes=os.urandom)
        run_client(stale, alert=1201, stop_after=3)
        assert stale.outcome != "completed"

        # refused with a clear 400, nothing sent
        assert bootstrap(gw, device_id, {"profile": "dm", "sec": "USERPIN", "pin": "12ab"})[0] == 400
        gw.put_device(device_id, device_account(None))
        status, body = bootstrap(gw, device_id, {"profile": "dm", "sec": "NETWPIN"})
        assert (status, body["error"]["code"]) == (400, "no_imsi")
        status, body = bootstrap(gw, device_id, {"profile": "dm", "sec": "USERPIN", "pin": "1234"})
        assert (status, body["error"]["code"]) == (400, "no_msisdn")
        try:
            extra = sim.wait("SM ", timeout=1)
            raise AssertionError("nothing may be sent for a refused bootstrap: %s" % (extra,))
        except AssertionError as e:
            assert "never printed" in str(e)
    finally:
        gw.stop()
        sim.stop()


def _whole(parts):
    inbox, whole = sms.Reassembler(), None
    for part in parts:
        whole = inbox.add(sms.parse_user_data(part)) or whole
    return whole


def test_smart_card_file_exported_by_dmgw(tmp_path):
    """DM-3: ``dmgw bootstrap export`` writes the card file; a device reading it gets a working account."""
    import subprocess
    import sys

    from dmgateway.client.bootstrap import apply_bootstrap
    from tests.interop.daemon import ROOT

    gw = Daemon(tmp_path / "gw").start()
    try:
        device_id = "IMEI:350000000000203"
        assert gw.put_device(device_id, device_account(None))[0] == 201
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        token_file = os.path.join(gw.workdir, "var", "api.token")
        card = tmp_path / "card.bin"

        def export(*extra):
            return subprocess.run(
                [sys.executable, "-m", "dmgateway.cli", "bootstrap", "export", "--device", device_id,
                 "--url", gw.api.rsplit("/api/v1", 1)[0], "--token-file", token_file, "--out", str(card),
                 *extra],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

        done = export("--profile", "dm", "--size", "4096")
        assert done.returncode == 0, done.stderr
        summary = __import__("json").loads(done.stderr)
        assert (summary["sec"], summary["bytes"]) == ("none", 4096)
        data = card.read_bytes()
        assert data.endswith(b"\xff" * (4096 - summary["document_bytes"]))
        document = data[:summary["document_bytes"]]
        decoded = subprocess.run([sys.executable, "-m", "dmgateway.cli", "decode", str(card)], cwd=ROOT,
                                 env=env, capture_output=True, timeout=60)
        assert decoded.returncode == 0 and b"./DMAcc/dmgw-e2e/AppAuth/1/AAuthSecret" in decoded.stdout
        # the card model: the blob is applied at power-on without SEC/MAC
        tree = standard_tree({"DevId": device_id})
        account = apply_bootstrap(tree, document, "application/vnd.syncml.dm+wbxml")
        session_completes_job(gw, device_id, account, tree)

        # refusals: too small a file; the API's own 400 (USERPIN without a PIN)
        before = gw.call("GET", "/devices/" + urllib.parse.quote(device_id, safe=""))[1]
        small = export("--profile", "cp", "--size", "10")
        assert small.returncode == 1 and "too_large" in small.stderr, small.stderr
        after = gw.call("GET", "/devices/" + urllib.parse.quote(device_id, safe=""))[1]
        assert after["client_auth"] == before["client_auth"]  # nothing changed
        assert not card.read_bytes().startswith(b"\x03\x0b")  # the file is not replaced
        refused = export("--profile", "cp", "--sec", "USERPIN")
        assert refused.returncode == 1 and "invalid_bootstrap" in refused.stderr
    finally:
        gw.stop()
