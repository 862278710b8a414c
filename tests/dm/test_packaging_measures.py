"""dm.packaging: the shortcuts that measure less decide as try_add one by one does."""

import random

import pytest

from dmgateway.codec import syncml as sm
from dmgateway.codec import wbxml, xml
from dmgateway.dm.packaging import MessageBuilder, number


def hdr():
    return sm.SyncHdr(session_id="1", msg_id="3", target=sm.LocRef("dev"), source=sm.LocRef("srv"))


def _commands(rng, count):
    """Commands of unlike sizes, some with a MetInf Meta (a WBXML page switch), one Atomic."""
    cmds = []
    for n in range(count):
        kind = rng.randrange(4)
        target = sm.LocRef("./N/%d/%s" % (n, "x" * rng.randrange(40)))
        if kind == 0:
            cmds.append(sm.Get(items=[sm.Item(target=target)]))
        elif kind == 1:
            cmds.append(sm.Replace(items=[sm.Item(target=target, data="v" * rng.randrange(300),
                                                  meta=sm.Meta(format="chr", type="text/plain"))]))
        elif kind == 2:
            cmds.append(sm.Delete(items=[sm.Item(target=target)]))
        else:
            cmds.append(sm.Atomic(commands=[sm.Add(items=[sm.Item(target=target, data="a")]),
                                            sm.Delete(items=[sm.Item(target=target)])]))
    return cmds


def _state(builder, cmds, codec):
    return codec.encode(builder.build(True)), builder.optional, builder.mark(), [c.cmd_id for c in cmds]


def _builders(codec, limit, trailer):
    calls = []
    made = []
    for _ in range(2):
        builder = MessageBuilder(hdr(), lambda m: calls.append(1) or len(codec.encode(m)), limit,
                                 [sm.Alert(data=1222)] if trailer else ())
        builder.add(sm.Status(cmd_ref="0", cmd="SyncHdr", data=200))
        made.append(builder)
    return made, calls


@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
def test_add_fitting_prefix_is_try_add_one_by_one(codec):
    rng = random.Random(16)
    for _ in range(60):
        count = rng.randrange(1, 20)
        seed = rng.random()
        for limit in (None, rng.randrange(150, 5000)):
            for trailer in (False, True):
                (one, batch), calls = _builders(codec, limit, trailer)
                if rng.randrange(2):  # a body of known size, as after take_fitting
                    one.try_add(sm.Status(cmd_ref="1", cmd="Alert", data=200))
                    batch.try_add(sm.Status(cmd_ref="1", cmd="Alert", data=200))
                first, second = _commands(random.Random(seed), count), _commands(random.Random(seed), count)
                placed = 0
                while placed < count and one.try_add(first[placed]):
                    placed += 1
                del calls[:]
                made = []

                def make(index):
                    made.append(index)
                    return second[index] if index < count else None
                assert batch.add_fitting_prefix(make, count + rng.randrange(3)) == (
                    placed, limit is not None and placed < count), (limit, count)
                assert made == list(range(len(made)))  # in order, once each
                assert _state(one, first[:placed], codec) == _state(batch, second[:placed], codec)
                if limit is not None:
                    assert len(calls) <= max(placed + 2, 2 + 2 * count.bit_length())


def test_add_fitting_prefix_measures_twice_when_all_fit():
    calls = []
    builder = MessageBuilder(hdr(), lambda m: calls.append(1) or len(xml.encode(m)), 10 ** 6)
    assert builder.try_add(sm.Status(cmd_ref="0", cmd="SyncHdr", data=200))  # the body's size known
    del calls[:]
    cmds = [sm.Get(items=[sm.Item(target=sm.LocRef("./N/%d" % n))]) for n in range(20)]
    assert builder.add_fitting_prefix(cmds.__getitem__, 20) == (20, False)
    assert len(calls) == 2  # one, then all
    assert [c.cmd_id for c in builder.body] == [str(n) for n in range(1, 22)]


def test_add_fitting_prefix_lets_an_encoder_error_out_with_nothing_added():
    builder = MessageBuilder(hdr(), lambda m: len(xml.encode(m)), 10 ** 6)
    bad = sm.Status(cmd_ref="1", cmd="Get", data="not an int")
    with pytest.raises(ValueError):
        builder.add_fitting_prefix([sm.Get(items=[sm.Item(target=sm.LocRef("./A"))]), bad].__getitem__, 2)
    assert builder.body == [] and builder.optional == 0 and builder.mark() == (0, 0, 1)


@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
def test_try_add_all_decides_as_one_by_one(codec):
    rng = random.Random(7)
    for _ in range(80):
        count = rng.randrange(0, 8)
        seed = rng.random()
        limit = rng.randrange(150, 3000)
        (one, batch), calls = _builders(codec, limit, rng.randrange(2))
        first, second = _commands(random.Random(seed), count), _commands(random.Random(seed), count)
        mark = one.mark()
        fits = all(one.try_add(cmd) for cmd in first)
        if not fits:
            one.rollback(mark)
        before = len(calls)
        assert batch.try_add_all(second) == fits
        assert len(calls) - before <= 1
        assert codec.encode(one.build(True)) == codec.encode(batch.build(True))
        assert one.mark() == batch.mark()


@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
def test_encoded_is_the_last_measure_only_for_the_very_message(codec):
    encodes = []

    def encode(msg):
        encodes.append(msg)
        return codec.encode(msg)

    builder = MessageBuilder(hdr(), None, 10 ** 6, encode=encode)
    status = builder.add(sm.Status(cmd_ref="0", cmd="SyncHdr", data=200, chal=sm.Chal(
        sm.Meta(type="syncml:auth-md5", format="b64", next_nonce="bm9uY2U="))))
    assert builder.try_add(sm.Get(items=[sm.Item(target=sm.LocRef("./A"))]))
    assert len(encodes) == 1
    final = builder.build(True)
    assert builder.encoded(final) == codec.encode(final) and len(encodes) == 1  # kept
    not_final = builder.build(False)
    assert builder.encoded(not_final) == codec.encode(not_final) and len(encodes) == 2  # Final differs
    assert builder.size(False) == len(codec.encode(not_final))  # measured without Final: kept
    assert builder.encoded(builder.build(False)) == codec.encode(not_final) and len(encodes) == 3
    other = builder.build(True)
    other.body = other.body[:1]
    assert builder.encoded(other) == codec.encode(other) and len(encodes) == 4  # other commands
    assert builder.size(True) and len(encodes) == 5
    status.chal = None  # changed in place: the caller says so
    builder.forget()
    final = builder.build(True)
    assert builder.encoded(final) == codec.encode(final) and len(encodes) == 6
    assert b"bm9uY2U" not in builder.encoded(final)


def _binary_fit_largest(builder, make, maximum, codec):
    """fit_largest as it was: make(maximum), then a binary search below."""
    def fits(length):
        cmd = make(length)
        number(cmd, builder._next_id)
        return len(codec.encode(sm.SyncML(hdr=builder.hdr, body=builder.body + [cmd], final=True))) <= builder.limit
    if fits(maximum):
        return maximum
    low, high = 0, maximum - 1
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _chunk_maker(data, first):
    remaining = len(data)

    def make(length):
        meta = sm.Meta(format="chr" if isinstance(data, str) else "b64", type="text/plain",
                       size=remaining if first else None)
        return sm.Replace(items=[sm.Item(target=sm.LocRef("./Vendor/Blob"), data=data[:length],
                                         meta=meta, more_data=length < remaining)])
    return make


@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
def test_fit_largest_finds_what_the_binary_search_found(codec):
    rng = random.Random(3)
    alphabet = "abcdefghij<&>\"' é€\U0001F600\n"
    for _ in range(150):
        length = rng.randrange(1, 9000)
        if rng.randrange(3):
            data = "".join(rng.choice(alphabet[:rng.randrange(1, len(alphabet))]) for _ in range(length))
        else:
            data = bytes(rng.randrange(256) for _ in range(length))
        limit = rng.randrange(200, 9000)
        make = _chunk_maker(data, rng.randrange(2))
        maximum = min(len(data), limit) if rng.randrange(2) else len(data)
        builder = MessageBuilder(hdr(), lambda m: len(codec.encode(m)), limit)
        builder.add(sm.Status(cmd_ref="0", cmd="SyncHdr", data=200))
        if rng.randrange(2):
            builder.try_add(sm.Status(cmd_ref="1", cmd="Alert", data=200))
        expected = _binary_fit_largest(builder, make, maximum, codec)
        before = builder.mark()
        length_found, cmd = builder.fit_largest(make, maximum)
        assert length_found == expected, (limit, len(data), maximum)
        if expected:
            assert cmd is builder.body[-1] and cmd.items[0].data == data[:expected]
            assert builder.mark() == (before[0] + 1, before[1] + 1, before[2] + 1)
            assert codec.encode(builder.build(True)) == codec.encode(
                sm.SyncML(hdr=builder.hdr, body=builder.body[:-1] + [number_copy(make(expected), before[2])],
                          final=True))
        else:
            assert cmd is None and builder.mark() == before


def number_copy(cmd, first):
    number(cmd, first)
    return cmd


def test_fit_largest_measures_a_few_times():
    calls = []
    builder = MessageBuilder(hdr(), lambda m: calls.append(1) or len(xml.encode(m)), 4096)
    builder.try_add(sm.Status(cmd_ref="0", cmd="SyncHdr", data=200))
    del calls[:]
    data = "x" * 100000
    length, cmd = builder.fit_largest(_chunk_maker(data, True), 4096)
    assert 3000 < length < 4096 and len(calls) <= 5  # the binary search took 12
