"""The SNMP agent of ``snmp.ini``: SNMPv2c read-only (pysnmp 7) serving
``conf/DMGATEWAY-MIB.txt``, and traps on SMPP link and store state changes.

pysnmp 7 runs on asyncio, so the daemon runs on Twisted's asyncio reactor
when SNMP is enabled (:func:`install_asyncio_reactor`, called by ``tap.py``
before anything imports the reactor): one thread, one loop, so the agent
reads the gateway's state directly.

The MIB is served by :class:`GatewayMib`, a small instrumentation of our
own (pysnmp's command responders call ``read_variables`` and
``read_next_variables``): a sorted table of (OID, value) rebuilt per
request from the dispatcher, the outbox, the SMPP links and a store
snapshot refreshed every ``refresh`` seconds.
"""

import bisect
import socket
import time

from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger

log = Logger()

#: The placeholder private enterprise number of DMGATEWAY-MIB (not registered with IANA).
ENTERPRISE_OID = (1, 3, 6, 1, 4, 1, 59999)
OBJECTS = ENTERPRISE_OID + (1,)
NOTIFICATIONS = ENTERPRISE_OID + (0,)
SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)

BEARERS = ("sms", "sip")  # dmgwBearerIndex 1, 2
TRAP_SMPP_DOWN, TRAP_SMPP_UP, TRAP_STORE_DOWN, TRAP_STORE_UP = 1, 2, 3, 4
UP, DOWN = 1, 2
COUNTER_WRAP = 2**32
CONTEXT = "dmgw"  # the SNMP context name of everything served and sent


class AsyncioReactorNeeded(Exception):
    """Another reactor is already running this process."""


def install_asyncio_reactor():
    """Make Twisted's asyncio reactor the process's reactor (if none is yet).

    Raises :class:`AsyncioReactorNeeded` when another reactor was installed
    first (e.g. ``twistd --reactor=epoll``).
    """
    import asyncio
    import sys

    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor

        if type(reactor).__name__ != "AsyncioSelectorReactor":
            raise AsyncioReactorNeeded(
                "[snmp] enabled needs the asyncio reactor, but %s is installed "
                "(drop twistd's --reactor option)" % (type(reactor).__name__,)
            )
        return reactor
    from twisted.internet import asyncioreactor

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
    from twisted.internet import reactor

    return reactor


# -- what is served ---------------------------------------------------------------


def _clip(value):
    return int(value) % COUNTER_WRAP


def gateway_values(gateway, snapshot, started, now, store_up):
    """``{oid: (kind, value)}`` of everything DMGATEWAY-MIB names, read now."""
    dispatcher = getattr(gateway, "dispatcher", None)
    stats = dispatcher.stats if dispatcher is not None else {}
    ended = dispatcher.sessions_ended if dispatcher is not None else {}
    outbox = getattr(dispatcher, "outbox", None) if dispatcher is not None else None
    by_bearer = outbox.by_bearer if outbox is not None else {}
    snapshot = snapshot or {"outbox": {}, "jobs": {}, "locked": 0, "webhook_backlog": 0}
    jobs = snapshot["jobs"]
    completed = ended.get("completed", 0)
    values = {
        SYS_DESCR: ("str", "dmgateway OMA DM server gateway"),
        SYS_OBJECT_ID: ("oid", ENTERPRISE_OID),
        SYS_UPTIME: ("ticks", int((now - started) * 100)),
        OBJECTS + (1, 0): ("ticks", int((now - started) * 100)),
        OBJECTS + (2, 0): ("gauge", dispatcher.live_count() if dispatcher is not None else 0),
        OBJECTS + (3, 0): ("counter", stats.get("sessions_started", 0)),
        OBJECTS + (4, 0): ("counter", completed),
        OBJECTS + (5, 0): ("counter", sum(ended.values()) - completed),
        OBJECTS + (6, 0): ("counter", stats.get("auth_failures", 0)),
        OBJECTS + (7, 0): ("gauge", snapshot["locked"]),
        OBJECTS + (8, 0): ("gauge", jobs.get("queued", 0)),
        OBJECTS + (9, 0): ("gauge", jobs.get("notified", 0)),
        OBJECTS + (10, 0): ("gauge", jobs.get("running", 0)),
        OBJECTS + (11, 0): ("gauge", jobs.get("done", 0)),
        OBJECTS + (12, 0): ("gauge", jobs.get("failed", 0)),
        OBJECTS + (13, 0): ("gauge", jobs.get("expired", 0)),
        OBJECTS + (14, 0): ("gauge", snapshot["webhook_backlog"]),
        OBJECTS + (15, 0): ("counter", getattr(gateway, "store_errors", 0)),
        OBJECTS + (16, 0): ("int", UP if store_up else DOWN),
    }
    entry = OBJECTS + (20, 1)
    for index, bearer in enumerate(BEARERS, 1):
        for column, (kind, value) in enumerate((
            ("str", bearer),
            ("gauge", snapshot["outbox"].get((bearer, "queued"), 0)),
            ("gauge", snapshot["outbox"].get((bearer, "sent"), 0)),
            ("counter", by_bearer.get((bearer, "sent"), 0)),
            ("counter", by_bearer.get((bearer, "delivered"), 0)),
            ("counter", by_bearer.get((bearer, "failed"), 0)),
            ("counter", by_bearer.get((bearer, "temporary_failure"), 0)),
        ), 2):
            values[entry + (column, index)] = (kind, value)
    entry = OBJECTS + (21, 1)
    for index, link in enumerate(gateway.smpp_links(), 1):
        protocol = getattr(link, "_protocol", None)
        outstanding = getattr(protocol, "_outstanding", None) if protocol is not None else None
        for column, (kind, value) in enumerate((
            ("str", link.config.name),
            ("int", UP if link.state == "bound" else DOWN),
            ("gauge", len(outstanding) if outstanding is not None else 0),
            ("gauge", link.config.window),
        ), 2):
            values[entry + (column, index)] = (kind, value)
    return values


def _asn1(kind, value):
    from pysnmp.proto import rfc1902

    if kind == "str":
        return rfc1902.OctetString(value.encode("utf-8")[:255])
    if kind == "oid":
        return rfc1902.ObjectIdentifier(value)
    if kind == "ticks":
        return rfc1902.TimeTicks(_clip(value))
    if kind == "gauge":
        return rfc1902.Gauge32(min(int(value), COUNTER_WRAP - 1))
    if kind == "counter":
        return rfc1902.Counter32(_clip(value))
    return rfc1902.Integer32(int(value))


class GatewayMib:
    """The MIB instrumentation pysnmp's responders read (GET, GETNEXT, GETBULK)."""

    def __init__(self, read):
        self._read = read  # () -> {oid tuple: (kind, value)}

    def _table(self):
        values = self._read()
        return sorted(values), values

    def read_variables(self, *var_binds, **context):
        from pysnmp.proto import rfc1905

        _, values = self._table()
        answer = []
        for name, _value in var_binds:
            found = values.get(tuple(name))
            answer.append((name, _asn1(*found) if found else rfc1905.noSuchObject))
        return answer

    def read_next_variables(self, *var_binds, **context):
        from pysnmp.proto import rfc1902, rfc1905

        oids, values = self._table()
        answer = []
        for name, _value in var_binds:
            at = bisect.bisect_right(oids, tuple(name))
            if at < len(oids):
                oid = oids[at]
                answer.append((rfc1902.ObjectName(oid), _asn1(*values[oid])))
            else:
                answer.append((name, rfc1905.endOfMibView))
        return answer

    def write_variables(self, *var_binds, **context):
        """The MIB is read-only: a SET is answered notWritable for its first variable."""
        from pysnmp.smi import error

        name = var_binds[0][0] if var_binds else None
        raise error.NotWritableError(name=name, idx=0)


# -- the agent ---------------------------------------------------------------------


class SnmpAgent(service.Service):
    """Serves the MIB on ``[snmp] address`` and sends the traps."""

    def __init__(self, config, gateway, reactor, refresh=10.0, poll=0.25):
        self.config = config
        self.gateway = gateway
        self.reactor = reactor
        self.refresh_interval = refresh
        self.poll_interval = poll
        self.started = time.time()
        self.snapshot = None
        self.store_up = True
        self._engine = None
        self._socket = None
        self._loops = []
        self._link_states = {}
        self._ntf = None
        self.traps_sent = 0

    # life cycle

    def bind(self):
        """Bind the UDP socket now, so a busy port fails the start with a clear line."""
        host, port = self.config.host_port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            from twisted.internet.error import CannotListenError

            raise CannotListenError(host, "%d/udp (snmp)" % port, e)
        sock.setblocking(False)
        self._socket = sock
        return sock.getsockname()

    def startService(self):
        super().startService()
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import cmdrsp, context

        if self._socket is None:
            self.bind()
        snmp = self._engine = engine.SnmpEngine()
        config.add_transport(snmp, udp.DOMAIN_NAME, udp.UdpAsyncioTransport().open_server_mode(sock=self._socket))
        # one community, read-only, in a named context: pysnmp's VACM does not
        # find the empty context name when it checks a trap's objects
        config.add_context(snmp, CONTEXT)
        if self.config.community:
            config.add_v1_system(snmp, "dmgw-area", self.config.community, contextName=CONTEXT)
            for model in (1, 2):
                config.add_vacm_user(snmp, model, "dmgw-area", "noAuthNoPriv", (1, 3, 6, 1), (), (1, 3, 6, 1),
                                     contextName=CONTEXT)
        if self.config.v3_user:
            self._add_v3_user(snmp)
        self._setup_traps(snmp)
        snmp_context = context.SnmpContext(snmp)
        mib = GatewayMib(self.values)
        snmp_context.unregister_context_name(b"")
        snmp_context.register_context_name(b"", mib)
        snmp_context.register_context_name(CONTEXT.encode("ascii"), mib)
        # SET too, so that a manager trying one hears notWritable instead of nothing
        for responder in (cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder, cmdrsp.BulkCommandResponder,
                          cmdrsp.SetCommandResponder):
            responder(snmp, snmp_context)
        for interval, call in ((self.refresh_interval, self.refresh), (self.poll_interval, self.poll)):
            loop = task.LoopingCall(call)
            loop.clock = self.reactor
            loop.start(interval, now=True).addErrback(lambda f: log.failure("snmp loop failed", f))
            self._loops.append(loop)
        host, port = self._socket.getsockname()[:2]
        log.info("listening: snmp on {host}:{port}/udp", host=host, port=port)

    def stopService(self):
        super().stopService()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
        self._socket = None

    def _add_v3_user(self, snmp):
        """SNMPv3 USM: the one read-only user of ``[snmp] v3_user`` (context ``dmgw``)."""
        from pysnmp.entity import config

        auth_key, priv_key = self.config.v3_keys
        auth = {"md5": config.USM_AUTH_HMAC96_MD5, "sha": config.USM_AUTH_HMAC96_SHA,
                "sha256": config.USM_AUTH_HMAC192_SHA256}[self.config.v3_auth_protocol]
        priv = {"aes": config.USM_PRIV_CFB128_AES, "des": config.USM_PRIV_CBC56_DES,
                "none": config.USM_PRIV_NONE}[self.config.v3_priv_protocol]
        level = "authNoPriv" if self.config.v3_priv_protocol == "none" else "authPriv"
        config.add_v3_user(snmp, self.config.v3_user, auth, auth_key, priv,
                           priv_key if level == "authPriv" else None)
        config.add_vacm_user(snmp, 3, self.config.v3_user, level, (1, 3, 6, 1), (), (), contextName=CONTEXT)

    # values

    def values(self):
        return gateway_values(self.gateway, self.snapshot, self.started, time.time(), self.store_up)

    @defer.inlineCallbacks
    def refresh(self):
        store = getattr(self.gateway, "store", None)
        if store is None or store.closed:
            return
        try:
            d = store.monitor_snapshot(time.time(), ["webhook:" + u for u in self.gateway.config.api.webhooks])
            d.addTimeout(5, self.reactor)
            self.snapshot = yield d
        except Exception as e:
            self._store_state(False, str(e) or type(e).__name__)
        else:
            self._store_state(True, None)

    def _store_state(self, up, reason):
        if up == self.store_up:
            return
        self.store_up = up
        log.warn("store {state} (snmp trap){reason}", state="up again" if up else "down",
                 reason="" if up else ": " + reason)
        self.send_trap(TRAP_STORE_UP if up else TRAP_STORE_DOWN, [(OBJECTS + (16, 0), ("int", UP if up else DOWN))])

    def poll(self):
        """Trap on SMPP link state changes (bound <-> not bound)."""
        for index, link in enumerate(self.gateway.smpp_links(), 1):
            bound = link.state == "bound"
            was = self._link_states.get(index)
            self._link_states[index] = bound
            if was is None and not bound:
                continue  # not bound yet at start: not a change
            if was is None or was == bound:
                continue
            entry = OBJECTS + (21, 1)
            self.send_trap(TRAP_SMPP_UP if bound else TRAP_SMPP_DOWN, [
                (entry + (2, index), ("str", link.config.name)),
                (entry + (3, index), ("int", UP if bound else DOWN)),
            ])

    # traps

    def _setup_traps(self, snmp):
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config
        from pysnmp.entity.rfc3413 import ntforg

        targets = self.config.trap_hosts
        if not targets or not self.config.community:
            return  # traps are SNMPv2c, with the community
        config.add_target_parameters(snmp, "dmgw-trap-params", "dmgw-area", "noAuthNoPriv", 1)
        # traps leave from the agent's own UDP socket
        for n, (host, port) in enumerate(targets):
            config.add_target_address(
                snmp, "dmgw-trap-%d" % n, udp.DOMAIN_NAME, (host, port), "dmgw-trap-params",
                tagList="dmgw-trap-tag",
            )
        config.add_notification_target(snmp, "dmgw-notify", "dmgw-trap-params", "dmgw-trap-tag", "trap")
        self._ntf = ntforg.NotificationOriginator()

    def send_trap(self, number, objects):
        """An SNMPv2 trap ``dmgwNotifications.number`` with ``objects`` to every target."""
        if self._ntf is None or self._engine is None:
            return False
        from pysnmp.proto import rfc1902

        var_binds = [
            (rfc1902.ObjectName(SYS_UPTIME), _asn1("ticks", int((time.time() - self.started) * 100))),
            (rfc1902.ObjectName(SNMP_TRAP_OID), rfc1902.ObjectIdentifier(NOTIFICATIONS + (number,))),
        ] + [(rfc1902.ObjectName(oid), _asn1(*value)) for oid, value in objects]
        self._ntf.send_varbinds(self._engine, "dmgw-notify", None, CONTEXT, var_binds)
        self.traps_sent += 1
        log.info("snmp trap {trap} sent", trap=".".join(map(str, NOTIFICATIONS + (number,))))
        return True
