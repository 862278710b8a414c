"""
A wake source for :class:`dmgateway.client.fleet.FleetRunner` on the npm
``smpp`` SMSC simulator (tests/interop/smsc_sim.js): the gateway binds to
the node process; every ``SM`` line it prints (a submit_sm the gateway
sent) is decoded here -- UDH, concatenation -- and handed to the fleet as
the WSP push for that MSISDN.
"""

import os

from twisted.internet import defer, protocol, reactor
from zope.interface import implementer

from dmgateway.client.fleet import IWakeSource
from dmgateway.notify import sms
from tests.interop.daemon import ROOT, free_port
from tests.interop.test_smpp_simulator import ensure_package

SCRIPT = os.path.join(ROOT, "tests", "interop", "smsc_sim.js")
ESM_UDHI = 0x40


@implementer(IWakeSource)
class NodeSMSC(protocol.ProcessProtocol):
    kind = "sms"

    def __init__(self, system_id="gw", password="secret"):
        self.system_id, self.password = system_id, password
        self.port = free_port()
        self.lines = []
        self.counters = {"submits": 0, "notifications": 0, "binds": 0}
        self._partial = b""
        self._listener = None
        self._held = []
        self._reassembler = sms.Reassembler(max_pending=4096)
        self._bound = []
        self._listening = defer.Deferred()
        self.ended = defer.Deferred()

    def start(self):
        node = ensure_package()
        env = dict(os.environ, NODE_PATH=os.path.join(ROOT, "var", "node", "node_modules"))
        reactor.spawnProcess(self, node, [node, SCRIPT, str(self.port), self.system_id, self.password], env=env,
                             path=ROOT)
        return self._listening.addTimeout(20, reactor)

    def when_bound(self):
        d = defer.Deferred()
        if self.counters["binds"]:
            d.callback(None)
        else:
            self._bound.append(d)
        return d.addTimeout(30, reactor)

    def outReceived(self, data):
        self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            self._line(line)

    def _line(self, line):
        words = line.split()
        if not words:
            return
        if words[0] == "LISTENING" and not self._listening.called:
            self._listening.callback(None)
        elif words[0] == "BIND" and words[-1] == "ok":
            self.counters["binds"] += 1
            bound, self._bound = self._bound, []
            for d in bound:
                d.callback(None)
        elif words[0] == "SM" and len(words) >= 7:
            self.counters["submits"] += 1
            destination, esm_class, message = words[2], int(words[3]), bytes.fromhex(words[6])
            user_data = sms.parse_user_data(message, udhi=bool(esm_class & ESM_UDHI))
            whole = self._reassembler.add(user_data, sender=destination, now=reactor.seconds())
            if whole is not None:
                self.counters["notifications"] += 1
                if self._listener is None:
                    self._held.append((destination, whole))
                else:
                    self._listener(destination, whole)

    def listen(self, on_notification):
        self._listener = on_notification
        held, self._held = self._held, []
        for destination, data in held:
            on_notification(destination, data)

    def stop(self):
        self._listener = None

    def terminate(self):
        if self.transport is not None and not self.ended.called:
            self.transport.closeStdin()
            try:
                self.transport.signalProcess("KILL")
            except Exception:  # noqa: BLE001 - already gone
                pass
        return self.ended

    def processEnded(self, reason):
        if not self.ended.called:
            self.ended.callback(None)
