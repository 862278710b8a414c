"""
Webhook deliveries: one event to be POSTed to one URL, retried until
delivered or given up.

One area of L{dmgateway.store.base.Store} (on L{Database}); each public
method runs its C{_..._txn} (just below it) in one transaction.
"""

from __future__ import annotations

from typing import Iterable, Optional

from twisted.internet.defer import Deferred

from .database import Database
from .model import DELIVERY_STATES, Delivery, NotFound
from .rows import row_converter
from .values import check_int, check_state, check_states, check_text, check_time, marks

__all__ = ["WebhookStore", "delivery_from_row"]

delivery_from_row = row_converter(Delivery)


class WebhookStore(Database):
    """The webhook deliveries (see the module docstring)."""

    def add_delivery(
        self, url: str, event_seq: int, *, next_attempt_at: Optional[float] = None
    ) -> Deferred:
        """
        Schedule event C{event_seq} for webhook C{url} (state C{pending},
        due C{next_attempt_at}, default now).  Fire with the L{Delivery}.

        @raise NotFound: no such event.
        """
        return self.run_interaction(
            "add_delivery", self._add_delivery_txn, self._now(), url, event_seq,
            next_attempt_at,
        )

    def _add_delivery_txn(self, txn, now, url, event_seq, next_attempt_at) -> Delivery:
        check_text(url, "url", empty=False)
        check_int(event_seq, "event_seq", 1)
        check_time(next_attempt_at, "next_attempt_at", optional=True)
        if txn.fetchone("SELECT seq FROM events WHERE seq = ?", (event_seq,)) is None:
            raise NotFound(f"no event {event_seq}")
        row = {
            "url": url,
            "event_seq": event_seq,
            "state": "pending",
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": now if next_attempt_at is None else next_attempt_at,
            "created": now,
            "updated": now,
        }
        ident = txn.insert_row("deliveries", row, "delivery_id")
        return delivery_from_row(dict(row, delivery_id=ident))

    def get_delivery(self, delivery_id: int) -> Deferred:
        """Fire with the L{Delivery}, or L{None}."""
        return self.run_interaction("get_delivery", self._get_delivery_txn, delivery_id)

    def _get_delivery_txn(self, txn, delivery_id) -> Optional[Delivery]:
        check_int(delivery_id, "delivery_id", 0)
        row = txn.fetchone("SELECT * FROM deliveries WHERE delivery_id = ?", (delivery_id,))
        return None if row is None else delivery_from_row(row)

    def due_deliveries(self, now: float, limit: int = 100) -> Deferred:
        """Fire with C{pending} L{Delivery}s due by C{now}, earliest first."""
        return self.run_interaction("due_deliveries", self._due_deliveries_txn, now, limit)

    def _due_deliveries_txn(self, txn, now, limit) -> list[Delivery]:
        check_time(now, "now")
        check_int(limit, "limit", 1)
        rows = txn.fetchall(
            "SELECT * FROM deliveries WHERE state = 'pending'"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
            " ORDER BY COALESCE(next_attempt_at, 0), delivery_id LIMIT ?",
            (now, limit),
        )
        return [delivery_from_row(row) for row in rows]

    def mark_delivery(
        self,
        delivery_id: int,
        state: str,
        *,
        last_error: Optional[str] = None,
        next_attempt_at: Optional[float] = None,
        expect_state: Optional[Iterable[str] | str] = None,
    ) -> Deferred:
        """
        Record one delivery attempt: count it and set C{state}
        (C{delivered}, C{failed}, or C{pending} to retry at
        C{next_attempt_at}) and C{last_error} (C{None} clears it).

        @return: fires with whether the delivery was changed.
        """
        return self.run_interaction(
            "mark_delivery", self._mark_delivery_txn, self._now(), delivery_id, state,
            last_error, next_attempt_at, expect_state,
        )

    def _mark_delivery_txn(
        self, txn, now, delivery_id, state, last_error, next_attempt_at, expect_state
    ) -> bool:
        check_int(delivery_id, "delivery_id", 0)
        state = check_state(state, DELIVERY_STATES, "state")
        check_text(last_error, "last_error", optional=True)
        check_time(next_attempt_at, "next_attempt_at", optional=True)
        sql = (
            "UPDATE deliveries SET state = ?, attempts = attempts + 1,"
            " last_error = ?, next_attempt_at = ?, updated = ? WHERE delivery_id = ?"
        )
        args: list = [state, last_error, next_attempt_at, now, delivery_id]
        if expect_state is not None:
            expected = check_states(expect_state, DELIVERY_STATES, "expect_state")
            sql += f" AND state IN {marks(len(expected))}"
            args.extend(expected)
        return txn.execute(sql, args) == 1
