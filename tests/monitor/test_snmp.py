"""The SNMP agent's MIB view and trap decisions, without a network: GET and
GETNEXT over the served table, the link and store transitions that trap."""

from collections import Counter
from types import SimpleNamespace as NS

from twisted.internet import defer

from dmgateway.monitor import snmp
from dmgateway.monitor.snmp import OBJECTS, GatewayMib, SnmpAgent, gateway_values


def gateway(links=(), outbox=None):
    dispatcher = NS(
        stats={"sessions_started": 7, "auth_failures": 2},
        sessions_ended=Counter(completed=5, timeout=1),
        outbox=outbox,
        live_count=lambda: 1,
    )
    return NS(dispatcher=dispatcher, store=None, store_errors=3, smpp_links=lambda: list(links),
              config=NS(api=NS(webhooks=())))


def link(name, state, outstanding=0):
    return NS(state=state, config=NS(name=name, window=10), _protocol=NS(_outstanding=[None] * outstanding))


def test_values_name_every_object_once_with_bounded_rows():
    outbox = NS(by_bearer=Counter({("sms", "sent"): 4, ("sip", "failed"): 1}))
    snapshot = {"outbox": {("sms", "queued"): 2}, "jobs": {"queued": 3, "done": 9}, "locked": 1, "webhook_backlog": 6}
    values = gateway_values(gateway([link("default", "bound", 2), link("b", "connecting")], outbox),
                            snapshot, started=100.0, now=112.5, store_up=True)
    assert values[OBJECTS + (1, 0)] == ("ticks", 1250)
    assert values[OBJECTS + (3, 0)] == ("counter", 7)
    assert values[OBJECTS + (4, 0)] == ("counter", 5)
    assert values[OBJECTS + (5, 0)] == ("counter", 1)
    assert values[OBJECTS + (8, 0)] == ("gauge", 3)
    assert values[OBJECTS + (15, 0)] == ("counter", 3)
    assert values[OBJECTS + (20, 1, 3, 1)] == ("gauge", 2)  # sms queued
    assert values[OBJECTS + (20, 1, 5, 1)] == ("counter", 4)  # sms sent
    assert values[OBJECTS + (20, 1, 7, 2)] == ("counter", 1)  # sip failed
    assert values[OBJECTS + (21, 1, 3, 1)] == ("int", snmp.UP)
    assert values[OBJECTS + (21, 1, 3, 2)] == ("int", snmp.DOWN)
    assert values[OBJECTS + (21, 1, 4, 1)] == ("gauge", 2)


def test_get_and_getnext_walk_in_oid_order_to_the_end():
    from pysnmp.proto import rfc1902, rfc1905

    values = {(1, 3, 6, 1, 4, 1, 59999, 1, 2, 0): ("gauge", 1), (1, 3, 6, 1, 4, 1, 59999, 1, 10, 0): ("counter", 2 ** 33 + 5)}
    mib = GatewayMib(lambda: values)
    (answer,) = mib.read_variables((rfc1902.ObjectName((1, 3, 6, 1, 4, 1, 59999, 1, 2, 0)), None))
    assert int(answer[1]) == 1
    (answer,) = mib.read_variables((rfc1902.ObjectName((1, 3, 6, 1, 4, 1, 59999, 1, 3, 0)), None))
    assert answer[1] == rfc1905.noSuchObject
    walked, name = [], (1, 3, 6, 1, 4, 1, 59999)
    while True:
        ((oid, value),) = mib.read_next_variables((rfc1902.ObjectName(name), None))
        if value == rfc1905.endOfMibView:
            break
        walked.append((tuple(oid), int(value)))
        name = tuple(oid)
    # numeric order (1.10 after 1.2), counters wrap at 2**32
    assert walked == [((1, 3, 6, 1, 4, 1, 59999, 1, 2, 0), 1), ((1, 3, 6, 1, 4, 1, 59999, 1, 10, 0), 5)]


class _Recording(SnmpAgent):
    def __init__(self, gw):
        super().__init__(NS(), gw, reactor=None)
        self.traps = []

    def send_trap(self, number, objects):
        self.traps.append((number, objects))
        return True


def test_link_transitions_trap_once_each():
    the_link = link("default", "connecting")
    agent = _Recording(gateway([the_link]))
    agent.poll()  # not bound at start: no trap
    the_link.state = "bound"
    agent.poll()
    agent.poll()
    the_link.state = "connecting"
    agent.poll()
    assert [number for number, _ in agent.traps] == [snmp.TRAP_SMPP_UP, snmp.TRAP_SMPP_DOWN]
    assert agent.traps[1][1][0][1] == ("str", "default")


def test_store_outage_traps_at_start_and_end():
    class Store:
        closed = False
        fail = True

        def monitor_snapshot(self, now, cursors):
            return defer.fail(RuntimeError("database is locked")) if self.fail else defer.succeed(
                {"outbox": {}, "jobs": {}, "locked": 0, "webhook_backlog": 0})

    from twisted.internet.task import Clock

    gw = gateway()
    gw.store = Store()
    agent = _Recording(gw)
    agent.reactor = Clock()
    agent.refresh()
    agent.refresh()
    gw.store.fail = False
    agent.refresh()
    assert [number for number, _ in agent.traps] == [snmp.TRAP_STORE_DOWN, snmp.TRAP_STORE_UP]
    assert agent.store_up and agent.snapshot["locked"] == 0
