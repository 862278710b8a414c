"""No 5xx from any input, before or after authentication (issue 10): the
messages of a real session, in XML and WBXML, mutated (bytes flipped,
inserted, cut; hostile tokens spliced in) and posted with and without the
session's RespURI token.  Bounded: a fixed seed and a fixed count."""

import os
import random

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.bearers.httplimits import MessageLimits
from dmgateway.client import ClientSession
from tests.fixtures import ACCOUNT, DEVICE
from tests.support import start_dispatcher
from tests.test_dispatch import GET_SWV, account

# WBXML tokens an attacker likes: ENTITY 0, STR_I of a control, OPAQUE, SWITCH_PAGE, LITERAL
SPLICES = [b"\x02\x00", b"\x03\x01\x00", b"\xc3\x02\x00\x00", b"\x00\x07", b"\x04\x7f", b"\x83\x7f",
           b"&#0;", b"&#xD800;", b"\xed\xa0\x80", b"<!ENTITY x 'y'>", b"\x00"]
ANSWERS = {200, 400, 403, 413}


def mutate(rng, body):
    data = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        at = rng.randrange(len(data) + 1)
        if choice < 0.35 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif choice < 0.6:
            data[at:at] = rng.choice(SPLICES)
        elif choice < 0.8:
            del data[at:at + rng.randint(1, 8)]
        else:
            data = data[:at] if at else data
    return bytes(data)


class MutationTests(TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)

    async def recorded_session(self, encoding):
        """The messages of one real session: [(body, token or None)]."""
        await self.handlers.create_job(DEVICE, GET_SWV)
        session = ClientSession(account(), random_bytes=os.urandom, encoding=encoding)
        request = session.start()
        messages = []
        while request is not None:
            token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
            messages.append((request.body, token))
            reply = await self.dispatcher.handle_dm(request.body, encoding=encoding, token=token)
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        return messages

    async def run_mutations(self, encoding, count):
        rng = random.Random(20261204 + len(encoding))
        limits = MessageLimits()
        for body, _token in await self.recorded_session(encoding):
            for _ in range(count):
                # a live session to aim at: a device's package 1
                opening = ClientSession(account(), random_bytes=os.urandom, encoding=encoding).start()
                await self.dispatcher.handle_dm(opening.body, encoding=encoding)
                live = self.dispatcher._by_device.get(DEVICE)
                token = live.token if live is not None and rng.random() < 0.5 else None
                mutated = mutate(rng, body)
                reply = await self.dispatcher.handle_dm(mutated, encoding=encoding, token=token,
                                                        peer="127.0.0.2:1", limits=limits)
                self.assertIn(reply.code, ANSWERS, (mutated, reply.body[:300]))
        # every session left is timed out, and the device is served afterwards
        self.clock.advance(61)
        self.assertEqual(self.dispatcher._by_device, {})
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_mutated_xml(self):
        await self.run_mutations("xml", 60)

    async def test_mutated_wbxml(self):
        await self.run_mutations("wbxml", 60)
