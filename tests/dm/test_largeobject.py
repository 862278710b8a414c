"""dm.largeobject: outgoing chunk progress and incoming reassembly."""

from dmgateway.codec import syncml as sm
from dmgateway.dm.largeobject import OutgoingObject, Reassembler


def chunk(data, more=True):
    return sm.Item(source=sm.LocRef("./Log"), data=data, more_data=more)


def test_outgoing_object_counts_bytes_but_splits_characters():
    obj = OutgoingObject("aéb")
    assert obj.size == 4 and obj.remaining == 3 and obj.first
    assert obj.piece(2) == "aé"
    obj.advance(2)
    assert not obj.first and obj.remaining == 1 and obj.piece(5) == "b"
    obj.restart()
    assert obj.first and obj.remaining == 3


def test_reassembly_in_order():
    r = Reassembler(max_obj_size=100)
    assert r.feed("k", chunk("abc"), size=5).status == 213
    assert r.is_open("k") and not r.is_open("other")
    done = r.feed("k", chunk("de", more=False))
    assert (done.status, done.data) == (200, "abcde")
    assert r.pending is None and not r.is_open("k")


def test_binary_and_mixed_chunks_join_as_bytes():
    r = Reassembler(max_obj_size=100)
    r.feed("k", chunk(b"\x00\x01"))
    r.feed("k", chunk("é"))
    assert r.feed("k", chunk(b"\x02", more=False)).data == b"\x00\x01\xc3\xa9\x02"


def test_size_mismatch_is_424():
    r = Reassembler(max_obj_size=100)
    r.feed("k", chunk("abc"), size=10)
    assert r.feed("k", chunk("d", more=False)).status == 424
    assert r.pending is None


def test_announced_size_over_limit_refused_until_last_chunk():
    r = Reassembler(max_obj_size=4)
    assert r.feed("k", chunk("ab"), size=10).status == 413
    assert r.is_refused("k") and r.pending is None
    assert r.feed("k", chunk("cd")).status == 413
    assert r.feed("k", chunk("e", more=False)).status == 413
    assert not r.is_refused("k")


def test_growing_past_limit_without_size():
    r = Reassembler(max_obj_size=4)
    assert r.feed("k", chunk("abc")).status == 213
    assert r.feed("k", chunk("def", more=False)).status == 413
    assert not r.is_refused("k")  # that was the last chunk


def test_interrupt_returns_the_open_object():
    r = Reassembler(max_obj_size=100)
    assert r.interrupt() is None
    r.feed("k", chunk("abc"), size=9)
    obj = r.interrupt()
    assert obj.key == "k" and obj.declared == 9 and obj.first_item.source.loc_uri == "./Log"
    assert r.pending is None
