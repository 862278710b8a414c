"""dm.packaging: filling a message under MaxMsgSize, CmdIDs per message."""

from dmgateway.codec import syncml as sm
from dmgateway.codec import xml
from dmgateway.dm.packaging import MessageBuilder, number


def measure(msg):
    return len(xml.encode(msg))


def hdr():
    return sm.SyncHdr(session_id="1", msg_id="3", target=sm.LocRef("dev"), source=sm.LocRef("srv"))


def get(n):
    return sm.Get(items=[sm.Item(target=sm.LocRef("./N/%d" % n))])


def test_number_counts_nested_commands():
    atomic = sm.Atomic(commands=[sm.Add(), sm.Sequence(commands=[sm.Delete()]), sm.Replace()])
    assert number(atomic, 5) == 10
    assert [atomic.cmd_id] + [c.cmd_id for c in atomic.commands] == ["5", "6", "7", "9"]
    assert atomic.commands[1].commands[0].cmd_id == "8"


def test_unlimited_builder_takes_everything_without_measuring():
    calls = []
    builder = MessageBuilder(hdr(), lambda msg: calls.append(msg) or 10 ** 9, None)
    for n in range(50):
        assert builder.try_add(get(n))
    assert calls == [] and builder.msg_id == "3"
    assert [c.cmd_id for c in builder.build(True).body] == [str(n) for n in range(1, 51)]


def test_try_add_stops_at_the_limit_with_room_for_final():
    limit = 600
    builder = MessageBuilder(hdr(), measure, limit)
    added = 0
    while builder.try_add(get(added)):
        added += 1
    assert added > 2
    assert measure(builder.build(final=True)) <= limit
    assert measure(builder.build(final=False)) <= limit


def test_add_is_never_refused_and_rollback_restores_ids():
    builder = MessageBuilder(hdr(), measure, 10)  # nothing fits in 10 bytes
    builder.add(sm.Status(cmd_ref="0", cmd="SyncHdr"))
    assert not builder.try_add(get(1)) and builder.optional == 0
    mark = builder.mark()
    builder.limit = None
    builder.try_add(get(2))
    builder.try_add(get(3))
    builder.rollback(mark)
    assert len(builder.body) == 1 and builder.optional == 0
    builder.try_add(get(4))
    assert builder.body[-1].cmd_id == "2"


def test_fit_largest_finds_the_longest_chunk():
    limit = 700
    data = "x" * 5000

    def make(length):
        return sm.Replace(items=[sm.Item(target=sm.LocRef("./B"), data=data[:length], more_data=True)])

    builder = MessageBuilder(hdr(), measure, limit)
    length, cmd = builder.fit_largest(make, len(data))
    assert 0 < length < len(data) and cmd.items[0].data == data[:length]
    assert measure(builder.build(True)) <= limit
    longer = make(length + 1)
    number(longer, 1)
    assert measure(sm.SyncML(hdr(), [longer], True)) > limit  # it is the longest


def test_fit_largest_whole_or_nothing():
    builder = MessageBuilder(hdr(), measure, 2000)
    make = lambda length: sm.Replace(items=[sm.Item(data="y" * length)])  # noqa: E731
    assert builder.fit_largest(make, 10)[0] == 10
    tiny = MessageBuilder(hdr(), measure, 50)
    assert tiny.fit_largest(make, 10) == (0, None) and tiny.body == []
    assert tiny.fit_largest(make, 0) == (0, None)


def test_fits_alone():
    builder = MessageBuilder(hdr(), measure, 500)
    status = builder.add(sm.Status(cmd_ref="0", cmd="SyncHdr"))
    assert builder.fits_alone(get(1), [status])
    assert not builder.fits_alone(sm.Get(items=[sm.Item(target=sm.LocRef("x" * 500))]), [status])


def test_the_trailer_has_room_kept_and_ends_the_message():
    limit = 700
    alert = sm.Alert(data=1222)
    builder = MessageBuilder(hdr(), measure, limit, trailer=[alert])
    plain = MessageBuilder(hdr(), measure, limit)
    while builder.try_add(get(builder.optional)):
        pass
    while plain.try_add(get(plain.optional)):
        pass
    assert 0 < builder.optional <= plain.optional
    first = get(0)
    number(first, 1)
    exact = measure(sm.SyncML(hdr=hdr(), body=[first], final=True))
    assert MessageBuilder(hdr(), measure, exact).try_add(get(0))
    assert not MessageBuilder(hdr(), measure, exact, trailer=[alert]).try_add(get(0))
    body = builder.commands()
    assert body[-1].data == 1222 and body[-1].cmd_id == str(len(body))
    assert alert.cmd_id == ""  # the caller's trailer is not numbered in place
    assert measure(builder.build(final=True)) <= limit


def test_fits_measures_without_appending():
    builder = MessageBuilder(hdr(), measure, 500)
    builder.add(sm.Status(cmd_ref="0", cmd="SyncHdr"))
    assert builder.fits(get(1)) and len(builder.body) == 1
    assert not builder.fits(sm.Get(items=[sm.Item(target=sm.LocRef("x" * 500))]))
    assert builder.try_add(get(2)) and builder.body[-1].cmd_id == "2"


def test_the_trailer_is_numbered_after_the_nested_commands_of_the_body():
    builder = MessageBuilder(hdr(), measure, 2000, trailer=[sm.Alert(data=1222)])
    builder.add(sm.Status(cmd_ref="0", cmd="SyncHdr"))
    assert builder.try_add(sm.Atomic(commands=[get(1), get(2)]))
    msg = builder.build(final=True)
    ids = [msg.body[0].cmd_id, msg.body[1].cmd_id] + [c.cmd_id for c in msg.body[1].commands] + [msg.body[2].cmd_id]
    assert ids == ["1", "2", "3", "4", "5"]  # the Alert 1222 after the Atomic's Gets, as measured


def _statuses(count, ref_width=1):
    return [sm.Status(msg_ref="1", cmd_ref=str(n) * ref_width, cmd="Get", target_refs=["./N/%d" % n])
            for n in range(count)]


def _one_by_one(builder, queue):
    while queue and builder.try_add(queue[0]):
        queue.pop(0)


def _state(builder, queue):
    ids = [c.cmd_id for c in queue]
    return xml.encode(builder.build(True)), builder.optional, ids, len(queue)


def test_take_fitting_is_try_add_one_by_one_with_fewer_measures():
    from dmgateway.codec import wbxml
    for encode in (xml.encode, wbxml.encode):
        for limit in list(range(150, 1400, 37)) + [None]:
            for count in (0, 1, 2, 5, 12):
                for trailer in ((), (sm.Alert(data=1222),)):
                    results, measures = [], []
                    for take in (_one_by_one, MessageBuilder.take_fitting):
                        calls = []
                        builder = MessageBuilder(hdr(), lambda m: calls.append(1) or len(encode(m)),
                                                 limit, trailer)
                        builder.add(sm.Status(cmd_ref="0", cmd="SyncHdr"))
                        queue = _statuses(count)
                        take(builder, queue)
                        results.append(_state(builder, queue))
                        measures.append(len(calls))
                        if limit is not None:
                            assert len(encode(builder.build(True))) <= limit or builder.optional == 0
                    assert results[0] == results[1], (limit, count, trailer)
                    # at most one measure more than one by one; fewer when three or more fit
                    assert measures[1] <= measures[0] + 1
                    if results[0][3] == 0 and count > 2 and limit is not None:
                        assert measures[1] == 2 < measures[0]


def test_take_fitting_measures_once_when_all_fit():
    calls = []
    builder = MessageBuilder(hdr(), lambda m: calls.append(m) or measure(m), 10 ** 6)
    queue = _statuses(8)
    assert builder.take_fitting(queue) == 8 and queue == []
    assert len(calls) == 2  # the first alone, then the seven others together
    assert [c.cmd_id for c in builder.body] == [str(n) for n in range(1, 9)]


def test_take_fitting_keeps_the_error_of_the_command_that_has_it():
    builder = MessageBuilder(hdr(), measure, 10 ** 6)
    queue = _statuses(3)
    queue[1].data = "not an int"
    try:
        builder.take_fitting(queue)
    except ValueError:
        pass
    else:
        raise AssertionError("the bad Status was written")
    # as try_add one by one: the first went in, the bad one and the rest still owed
    assert [c.cmd_ref for c in builder.body] == ["0"] and len(queue) == 2


def test_unlimited_take_fitting_moves_all_numbered_as_one_by_one_without_measuring():
    calls = []
    builder = MessageBuilder(hdr(), lambda msg: calls.append(msg) or 10 ** 9, None)
    builder.add(sm.Status(msg_ref="1"))
    queue = [get(n) for n in range(4)] + [sm.Atomic(commands=[sm.Add(), sm.Delete()])]
    moved = list(queue)
    assert builder.take_fitting(queue) == 5 and queue == [] and calls == []
    assert builder.body[1:] == moved and builder.optional == 5
    assert [c.cmd_id for c in builder.body] == ["1", "2", "3", "4", "5", "6"]
    assert [c.cmd_id for c in moved[-1].commands] == ["7", "8"]
    assert builder.try_add(get(9)) and builder.body[-1].cmd_id == "9"
    assert builder.take_fitting([]) == 0
