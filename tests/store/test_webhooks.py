"""
Webhook deliveries on every engine (L{dmgateway.store.webhooks}).
"""

from twisted.trial.unittest import TestCase

from dmgateway.store import NotFound
from tests.store.support import START, OnInlineSQLite, OnPostgres, OnSQLite, StoreCase


class DeliveryTestsMixin(StoreCase):
    async def test_delivery_attempts(self):
        store = await self.open()
        seq = await store.append_event("session", "IMEI:1", START, {"outcome": "ok"})
        url = "https://hooks.example/dm?x=ü"
        delivery = await store.add_delivery(url, seq)
        self.assertEqual(
            (delivery.url, delivery.event_seq, delivery.state, delivery.attempts, delivery.next_attempt_at),
            (url, seq, "pending", 0, START),
        )
        self.assertEqual(await store.get_delivery(delivery.delivery_id), delivery)
        self.assertEqual(await store.due_deliveries(START), [delivery])

        self.clock.advance(1)
        self.assertTrue(
            await store.mark_delivery(
                delivery.delivery_id, "pending", last_error="HTTP 503", next_attempt_at=START + 30
            )
        )
        self.assertEqual(await store.due_deliveries(START + 29), [])
        retry = await store.get_delivery(delivery.delivery_id)
        self.assertEqual((retry.attempts, retry.last_error, retry.updated), (1, "HTTP 503", START + 1))
        self.assertEqual(await store.due_deliveries(START + 30), [retry])

        self.assertTrue(await store.mark_delivery(delivery.delivery_id, "delivered", expect_state="pending"))
        self.assertFalse(await store.mark_delivery(delivery.delivery_id, "failed", expect_state="pending"))
        done = await store.get_delivery(delivery.delivery_id)
        self.assertEqual((done.state, done.attempts, done.last_error), ("delivered", 2, None))
        self.assertEqual(await store.due_deliveries(START + 1000), [])
        self.assertFalse(await store.mark_delivery(delivery.delivery_id + 1000, "failed"))
        with self.assertRaises(ValueError):
            await store.mark_delivery(delivery.delivery_id, "bounced")

    async def test_due_order_and_limit(self):
        store = await self.open()
        seq = await store.append_event("tick", None, START)
        later = await store.add_delivery("http://a.example/", seq, next_attempt_at=START + 5)
        first = await store.add_delivery("http://b.example/", seq, next_attempt_at=START - 5)
        second = await store.add_delivery("http://c.example/", seq)
        self.assertEqual(await store.due_deliveries(START + 5), [first, second, later])
        self.assertEqual(await store.due_deliveries(START + 5, limit=2), [first, second])

    async def test_refusals_and_pruning(self):
        store = await self.open()
        with self.assertRaises(NotFound):
            await store.add_delivery("http://a.example/", 1)
        seq = await store.append_event("tick", None, 10.0)
        delivery = await store.add_delivery("http://a.example/", seq)
        with self.assertRaises(ValueError):
            await store.add_delivery("", seq)
        await store.prune_events(11.0)
        self.assertIsNone(await store.get_delivery(delivery.delivery_id))


class SQLiteDeliveryTests(OnSQLite, DeliveryTestsMixin, TestCase):
    pass


class SQLiteInlineDeliveryTests(OnInlineSQLite, DeliveryTestsMixin, TestCase):
    pass


class PostgresDeliveryTests(OnPostgres, DeliveryTestsMixin, TestCase):
    pass
