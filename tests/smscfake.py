"""A small fake SMSC (SMPP 3.4 server side) for the ESME tests, built on ``smpp.pdu``.

It accepts bind_transmitter/bind_transceiver with one password, acks
submit_sm with increasing message ids, answers enquire_link and unbind, and
records what it received.  Fault injection: ``drop_after_submits`` closes the
connection after that many submit_sm, ``throttle_next`` answers that many
submit_sm with ESME_RTHROTTLED, ``answer_enquire_link = False`` goes silent.
"""

import io
import struct

from smpp.pdu import operations
from smpp.pdu.pdu_encoding import PDUEncoder
from smpp.pdu.pdu_types import CommandStatus, EsmClass, EsmClassMode, EsmClassType
from twisted.internet import defer, protocol

_encoder = PDUEncoder()


class FakeSMSC(protocol.Protocol):
    def connectionMade(self):
        self.factory.connections.append(self)
        self._buffer = b""
        self._sequence = 0

    def connectionLost(self, reason):
        self.factory.connections.remove(self)
        waiting, self.factory.lost_waiters = self.factory.lost_waiters, []
        for d in waiting:
            d.callback(None)

    def dataReceived(self, data):
        self._buffer += data
        while len(self._buffer) >= 16 and not self.transport.disconnecting:
            (length,) = struct.unpack("!L", self._buffer[:4])
            if len(self._buffer) < length:
                return
            raw, self._buffer = self._buffer[:length], self._buffer[length:]
            self.factory.raw.append(raw)
            self.handle(_encoder.decode(io.BytesIO(raw)))

    def send(self, pdu):
        self.transport.write(_encoder.encode(pdu))

    def handle(self, pdu):
        f = self.factory
        f.received.append(pdu)
        name = pdu.id.name
        if name in ("bind_transmitter", "bind_transceiver"):
            ok = pdu.params["password"] == f.password and pdu.params["system_id"] == f.system_id
            resp = operations.getPDUClass(getattr(type(pdu.id), name + "_resp"))
            status = CommandStatus.ESME_ROK if ok else CommandStatus.ESME_RINVPASWD
            self.send(resp(pdu.seqNum, status, system_id=b"fakesmsc"))
            if ok:
                self.bound_as = name
                f._fire("bound", self)
        elif name == "submit_sm":
            f.submits.append(pdu)
            if f.throttle_next > 0:
                f.throttle_next -= 1
                self.send(operations.SubmitSMResp(pdu.seqNum, CommandStatus.ESME_RTHROTTLED))
            else:
                f.next_id += 1
                self.send(operations.SubmitSMResp(pdu.seqNum, message_id=b"msg%d" % f.next_id))
            f._fire("submit", pdu)
            if f.drop_after_submits is not None and len(f.submits) >= f.drop_after_submits:
                f.drop_after_submits = None
                self.transport.loseConnection()
        elif name == "enquire_link":
            if f.answer_enquire_link:
                self.send(operations.EnquireLinkResp(pdu.seqNum))
        elif name == "unbind":
            self.send(operations.UnbindResp(pdu.seqNum))
            self.transport.loseConnection()

    def send_receipt(self, message_id, stat="DELIVRD", err="000"):
        """A deliver_sm delivery receipt in the usual text form."""
        self._sequence += 1
        text = ("id:%s sub:001 dlvrd:001 submit date:2401010000 done date:2401010001 "
                "stat:%s err:%s text:" % (message_id, stat, err)).encode()
        self.send(operations.DeliverSM(
            self._sequence, service_type=b"", source_addr_ton=_ton(1), source_addr_npi=_npi(1),
            source_addr=b"447700900123", dest_addr_ton=_ton(1), dest_addr_npi=_npi(1),
            destination_addr=b"447700900001",
            esm_class=EsmClass(EsmClassMode.DEFAULT, EsmClassType.SMSC_DELIVERY_RECEIPT),
            protocol_id=0, priority_flag=_enc("priority_flag", 0), schedule_delivery_time=None,
            validity_period=None, registered_delivery=_enc("registered_delivery", 0),
            replace_if_present_flag=_enc("replace_if_present_flag", 0),
            data_coding=_enc("data_coding", 0), sm_default_msg_id=0, short_message=text))


def _enc(field, value):
    return PDUEncoder.DefaultRequiredParamEncoders[field].decode(io.BytesIO(bytes([value])))


def _ton(value):
    return _enc("source_addr_ton", value)


def _npi(value):
    return _enc("source_addr_npi", value)


class FakeSMSCFactory(protocol.ServerFactory):
    protocol = FakeSMSC

    def __init__(self, system_id=b"gw", password=b"secret"):
        self.system_id = system_id
        self.password = password
        self.connections = []
        self.received = []
        self.raw = []
        self.submits = []
        self.next_id = 0
        self.throttle_next = 0
        self.drop_after_submits = None
        self.answer_enquire_link = True
        self.lost_waiters = []
        self._waiters = {"bound": [], "submit": []}

    def _fire(self, event, value):
        waiting, self._waiters[event] = self._waiters[event], []
        for d in waiting:
            d.callback(value)

    def wait(self, event):
        """A deferred firing at the next ``bound`` or ``submit``."""
        d = defer.Deferred()
        self._waiters[event].append(d)
        return d

    def wait_lost(self):
        d = defer.Deferred()
        self.lost_waiters.append(d)
        return d
