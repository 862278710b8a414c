"""Wake-up throughput: submit_sm per second through one SMPP bind, as a ratio.

Against the third-party SMSC simulator (npm ``smpp`` in server mode,
tests/interop/smsc_sim.js), in the same run:

* ours: the gateway's ESME (``SMPPLink``), one bind, window 10, no
  throttle, submitting real WAP push segments for package #0;
* baseline: a minimal raw-socket SMPP sender (hand-made PDUs, one bind,
  the same window of 10 outstanding submit_sm) sending the same bytes.

Both run in this process, alternately, ``--runs`` times; medians of the
rates and of the CPU per submit_sm (this process, from the OS: on a shared
machine the CPU figures are the ones to trust).

Also package #0 builds per second (digest + WSP push + UDH segments).

    .venv/bin/python bench/notify.py [--count 3000] [--runs 3]
"""

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, reactor, task  # noqa: E402

from dmgateway.bearers.smpp import SMPPLink  # noqa: E402
from dmgateway.config.bearers import SmppLinkConfig  # noqa: E402
from dmgateway.notify.package0 import ServerCredential  # noqa: E402
from dmgateway.notify.trigger import build_trigger  # noqa: E402
from tests.interop.test_smpp_simulator import NODE_DIR, SCRIPT, ensure_package  # noqa: E402

WINDOW = 10


def start_simulator():
    node = ensure_package()
    env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
    process = subprocess.Popen(
        [node, SCRIPT, "0", "gw", "secret"], cwd=ROOT, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    port = int(process.stdout.readline().split()[1])
    # drain its per-message lines so the simulator never blocks on a full
    # pipe; in another process, so that no thread here competes with the
    # senders for the GIL
    drain = subprocess.Popen(["cat"], stdin=process.stdout, stdout=subprocess.DEVNULL)
    process.stdout.close()
    process.drain = drain
    return process, port


def segments(count):
    credential = ServerCredential("dmgw", b"nonce-bytes", secret="server-secret")
    return [build_trigger(credential, "dmgw", n % 0xFFFF + 1, bearer="sms").payloads[0] for n in range(count)]


def pdu(command_id, sequence, body):
    return struct.pack("!LLLL", 16 + len(body), command_id, 0, sequence) + body


def cstr(text):
    return text.encode("ascii") + b"\x00"


def raw_sender(port, messages):
    """Bind, then keep WINDOW submit_sm outstanding until all are answered."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(pdu(0x00000002, 1, cstr("gw") + cstr("secret") + cstr("") + bytes([0x34, 0, 0]) + cstr("")))
    buffer = b""

    def read_pdu():
        nonlocal buffer
        while len(buffer) < 4 or len(buffer) < struct.unpack("!L", buffer[:4])[0]:
            buffer += s.recv(65536)
        length = struct.unpack("!L", buffer[:4])[0]
        raw, buffer = buffer[:length], buffer[length:]
        return struct.unpack("!LLLL", raw[:16])

    read_pdu()  # bind_transmitter_resp
    started, cpu = time.perf_counter(), time.process_time()
    sent = answered = 0
    while answered < len(messages):
        while sent < len(messages) and sent - answered < WINDOW:
            sm = messages[sent]
            body = (
                cstr("") + bytes([1, 1]) + cstr("447700900000") + bytes([1, 1]) + cstr("447700900123")
                + bytes([0x40, 0, 0]) + cstr("") + cstr("") + bytes([1, 0, 4, 0, len(sm)]) + sm
            )
            s.sendall(pdu(0x00000004, sent + 2, body))
            sent += 1
        _length, command_id, status, _seq = read_pdu()
        if command_id == 0x80000004:
            assert status == 0, status
            answered += 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    s.close()
    return len(messages) / elapsed, cpu / len(messages) * 1e6


async def ours(port, messages):
    link = SMPPLink(
        SmppLinkConfig(
            name="bench", enabled=True, endpoint="tcp:host=127.0.0.1:port=%d" % (port,), system_id="gw",
            password="secret", bind="transmitter", source_addr="447700900000", source_ton=1, source_npi=1,
            window=WINDOW, max_per_second=1_000_000.0, request_delivery_receipts=False,
        ),
        reactor,
    )
    link.startService()
    await link.submit("+447700900123", [messages[0]])  # bound and warm
    started, cpu = time.perf_counter(), time.process_time()
    await defer.gatherResults([link.submit("+447700900123", [sm]) for sm in messages])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await link.stopService()
    return len(messages) / elapsed, cpu / len(messages) * 1e6


def package0_builds(seconds=1.0):
    credential = ServerCredential("dmgw", b"nonce-bytes", hashed="hiL68XABF3cVwp239gdl6g==")
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        build_trigger(credential, "dmgw", count % 0xFFFF + 1, bearer="sms", reference=count & 0xFF)
        count += 1
    return count / (time.perf_counter() - started)


async def main(args):
    process, port = start_simulator()
    try:
        messages = segments(args.count)
        rows = []
        for _run in range(args.runs):
            baseline, baseline_cpu = raw_sender(port, messages)
            gateway, gateway_cpu = await ours(port, messages)
            rows.append((gateway, baseline, gateway / baseline, gateway_cpu, baseline_cpu,
                         baseline_cpu / gateway_cpu))
        gateway, baseline, ratio, gateway_cpu, baseline_cpu, cpu_ratio = (
            statistics.median(column) for column in zip(*rows)
        )
        print(
            "SMPP submit_sm/s through one bind (window %d, median of %d runs): gateway ESME %.0f, "
            "raw-socket sender %.0f, ratio %.2f" % (WINDOW, args.runs, gateway, baseline, ratio)
        )
        print(
            "       CPU per submit_sm (this process): gateway ESME %.1f us, raw-socket sender %.1f us, "
            "CPU ratio %.2f" % (gateway_cpu, baseline_cpu, cpu_ratio)
        )
        print("package #0 + WSP push + UDH builds/s: %.0f" % (package0_builds(),))
    finally:
        process.stdin.close()
        process.wait(10)
        process.drain.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    task.react(lambda _reactor: defer.ensureDeferred(main(options)))
