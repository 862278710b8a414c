"""
Fewer index pages written per DM session.

* C{jobs_state_seq} leaves out running jobs (C{WHERE state <> 'running'}).
  A job is running only while its session lasts, and each session moved
  it into that part of the index at its first message and out of it at
  its last: two pages written (and checkpointed) per session for a state
  only the monitor's count asks for, all jobs at once (it counts them as
  all jobs less the others, see L{InventoryQueries._count_jobs_txn
  <dmgateway.store.inventory.InventoryQueries._count_jobs_txn>}).
  A query for other states repeats the index's condition word for word
  (L{NOT_RUNNING<dmgateway.store.jobs.NOT_RUNNING>}), so both engines see
  that the index holds what it asks for (C{jobs_in_state}, the queued
  device-function jobs without a wake-up); one for running jobs of one
  device reads C{jobs_device_seq}, as before.
* C{events_time} goes.  Every event (two per session) wrote its entry,
  for one reader that the gateway never runs: L{EventStore.prune_events
  <dmgateway.store.events.EventStore.prune_events>}, a maintenance call,
  which reads the whole event log instead.
"""

STATEMENTS = [
    "DROP INDEX jobs_state_seq",
    "CREATE INDEX jobs_state_seq ON jobs (state, seq) WHERE state <> 'running'",
    "DROP INDEX events_time",
]
