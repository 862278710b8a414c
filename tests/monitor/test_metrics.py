"""The gateway's histograms: what :func:`dmgateway.monitor.metrics._observer`
records is what prometheus-client's own ``observe`` records."""

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from dmgateway.monitor.metrics import LATENCY_BUCKETS, SESSION_BUCKETS, _observer

AMOUNTS = [0.0, 0.001, 0.0010001, 0.0025, 0.7, 1, 10, 10.5, 599.9, 600, 1e9, math.inf, math.nan, -1.0]


def _text(registry):
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


@pytest.mark.parametrize("buckets", [LATENCY_BUCKETS, SESSION_BUCKETS])
@pytest.mark.parametrize("labelled", [False, True])
def test_observer_records_what_observe_does(buckets, labelled):
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    labels = ["outcome"] if labelled else []
    expected = Histogram("h_seconds", "h", labels, buckets=buckets, registry=theirs)
    got = Histogram("h_seconds", "h", labels, buckets=buckets, registry=ours)
    if labelled:
        expected, got = expected.labels(outcome="completed"), got.labels(outcome="completed")
    observe = _observer(got)
    for amount in AMOUNTS + list(buckets):
        expected.observe(amount)
        observe(amount)
    assert _text(ours) == _text(theirs)


def test_observer_of_a_labelled_parent_refuses_as_observe_does():
    parent = Histogram("h_seconds", "h", ["outcome"], registry=CollectorRegistry())
    with pytest.raises(ValueError):
        _observer(parent)(1.0)
