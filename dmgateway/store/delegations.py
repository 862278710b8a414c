"""Reading and writing delegation records (table ``delegations``, migration 005).

Kept apart from :class:`~dmgateway.store.base.Store` so DM-6 stays one addition.  A record is the
JSON document the delegation flow keeps (see :mod:`dmgateway.delegation.flow`);
``role``, ``peer``, ``transaction_id``, ``state`` and ``until`` are copied
into columns for look-ups.
"""

import json

__all__ = ["DelegationRecords"]


class DelegationRecords:
    """Delegation records in one :class:`~dmgateway.store.base.Store`."""

    def __init__(self, store, clock):
        self.store = store
        self.clock = clock

    def save(self, doc):
        """Insert or update ``doc`` (a dict with ``id``); fires when committed."""
        return self.store.run_interaction("save_delegation", self._save_txn, doc,
                                          self.clock.seconds())

    @staticmethod
    def _save_txn(txn, doc, now):
        text = json.dumps(doc, allow_nan=False, separators=(",", ":"))
        changed = txn.execute(
            "UPDATE delegations SET state = ?, until = ?, pending_notice = ?, document = ?, "
            "updated = ? WHERE delegation_id = ?",
            (doc["state"], doc.get("until_epoch"), _unsent(doc), text, now, doc["id"]),
        )
        if not changed:
            txn.execute(
                "INSERT INTO delegations (delegation_id, role, peer, transaction_id, state, "
                "until, pending_notice, document, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc["id"], doc["role"], doc["peer"], doc["transaction_id"], doc["state"],
                 doc.get("until_epoch"), _unsent(doc), text, now, now),
            )
        return doc

    def get(self, delegation_id):
        return self.store.run_interaction("get_delegation", self._get_txn, delegation_id)

    @staticmethod
    def _get_txn(txn, delegation_id):
        row = txn.fetchone("SELECT document FROM delegations WHERE delegation_id = ?",
                           (delegation_id,))
        return None if row is None else json.loads(row["document"])

    def find(self, role, peer, transaction_id):
        return self.store.run_interaction("find_delegation", self._find_txn, role, peer,
                                          transaction_id)

    @staticmethod
    def _find_txn(txn, role, peer, transaction_id):
        row = txn.fetchone(
            "SELECT document FROM delegations WHERE role = ? AND peer = ? AND transaction_id = ?",
            (role, peer, transaction_id),
        )
        return None if row is None else json.loads(row["document"])

    def unsent(self):
        """Every record with a notice to the peer still undelivered."""
        return self.store.run_interaction("delegations_unsent", self._unsent_txn)

    @staticmethod
    def _unsent_txn(txn):
        rows = txn.fetchall("SELECT document FROM delegations WHERE pending_notice IS NOT NULL "
                            "ORDER BY created")
        return [json.loads(row["document"]) for row in rows]

    def in_states(self, states):
        """Every record in one of ``states`` (oldest first)."""
        return self.store.run_interaction("delegations_in_states", self._in_states_txn,
                                          tuple(states))

    @staticmethod
    def _in_states_txn(txn, states):
        marks = ", ".join("?" for _ in states)
        rows = txn.fetchall(
            "SELECT document FROM delegations WHERE state IN (%s) ORDER BY created" % (marks,),
            states,
        )
        return [json.loads(row["document"]) for row in rows]


def _unsent(doc):
    unsent = doc.get("unsent")
    return unsent[0] if unsent else None
