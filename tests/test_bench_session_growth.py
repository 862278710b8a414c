"""bench/session_growth.py's arithmetic: the ABBA order, the cost per extra job of each block, the
quartiles of the blocks, the arguments it refuses (a gateway played by a fake: nothing is timed)."""

import pytest
from twisted.internet import defer

from bench import session_growth


class FakeGateway:
    """Each session costs 1 ms plus 0.5 ms per extra job, plus 0.1 ms when it is the second of its pair."""

    instances = []

    def __init__(self):
        self.cpu = 0.0
        self.order = []
        self.store = self
        FakeGateway.instances.append(self)

    async def start(self, devices, jobs, more=()):
        self.jobs = dict.fromkeys(devices, jobs)
        for group, count in more:
            self.jobs.update(dict.fromkeys(group, count))

    async def session(self, device):
        second = len(self.order) % 2
        self.order.append(device)
        self.cpu += (1.0 + 0.5 * (self.jobs[device] - 1) + 0.1 * second) / 1000.0

    def close(self):
        return defer.succeed(None)


def test_blocks_give_the_cost_per_extra_job_and_the_order_bias_cancels(monkeypatch):
    monkeypatch.setattr(session_growth, "Gateway", FakeGateway)
    done = defer.ensureDeferred(session_growth.extra_job_cost(8, 6, 2, 4))
    one, many, blocks = done.result
    gateway = FakeGateway.instances[-1]
    ones = [session_growth.device_id(n) for n in range(10)]
    manys = [session_growth.device_id(100_000 + n) for n in range(10)]
    # the warm-up (one of each), then ABBA: one-many, many-one, ...
    assert gateway.order[:4] == [ones[0], manys[0], ones[1], manys[1]]
    assert gateway.order[4:12] == [ones[2], manys[2], manys[3], ones[3], ones[4], manys[4], manys[5], ones[5]]
    assert (one, many) == pytest.approx((1.05, 3.55))  # each kind second in half its pairs
    assert blocks == pytest.approx([0.5, 0.5])


def test_quartiles_stay_within_the_blocks():
    # statistics.quantiles' default (exclusive) method reaches past the data
    # when there are few points: with 2 blocks, 0.75 and 2.25 for 1 and 2
    assert session_growth.spread([1.0, 2.0]) == pytest.approx((1.5, 1.25, 1.75))
    assert session_growth.spread([2.0, 1.0, 3.0]) == pytest.approx((2.0, 1.5, 2.5))
    assert session_growth.spread([4.0]) == (4.0, 4.0, 4.0)


@pytest.mark.parametrize("argv", [
    ["--sessions", "10", "--block", "20"],  # no whole block: no cost per extra job (after all the sessions)
    ["--block", "3"],  # a block of an odd count of pairs is not ABBA: more one-many than many-one
    ["--block", "0"],
    ["--jobs", "1"],  # no extra job
    ["--runs", "0"],
    ["--hold", "0"],
])
def test_arguments_that_cannot_give_a_figure_are_refused(argv):
    with pytest.raises(SystemExit):
        session_growth.arguments(argv)


def test_the_defaults_are_taken():
    args = session_growth.arguments([])
    assert (args.sessions, args.jobs, args.runs, args.warmup, args.block, args.hold) == (300, 6, 3, 20, 20, 1000)
