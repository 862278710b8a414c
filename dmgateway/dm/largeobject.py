"""Large objects (dm-protocol §8): one Item's data spread over several messages.

Outgoing, :class:`OutgoingObject` remembers how much of a data value has been
sent; the packer asks it for the next piece that fits.  Incoming,
:class:`Reassembler` collects the chunks of one object (Results, a DevInfo
Replace or a client alert), enforces our size limit and checks the announced
``Meta/Size`` when the last chunk arrives.

Sizes are of the data *as transmitted*: UTF-8 bytes for text, bytes for
binary (WBXML opaque) data.
"""

from dataclasses import dataclass, field
from typing import Any, List, Optional

from . import status as st
from .commands import data_size, item_text


class OutgoingObject:
    """The progress of sending one data value in chunks.

    ``data`` is ``str`` (split between characters, never inside one) or
    ``bytes``.  ``size`` is the total transmitted size for ``Meta/Size``.
    """

    def __init__(self, data):
        self.data = data
        self.size = data_size(data)
        self.offset = 0  # in characters (str) or bytes

    @property
    def remaining(self):
        return len(self.data) - self.offset

    @property
    def first(self):
        return self.offset == 0

    def piece(self, length):
        """The next ``length`` units of data (without consuming them)."""
        return self.data[self.offset:self.offset + length]

    def advance(self, length):
        self.offset += length

    def restart(self):
        self.offset = 0


@dataclass
class IncomingObject:
    key: Any
    first_item: Any  # the Item of the first chunk (Source/Target for Alert 1225)
    declared: Optional[int]  # Meta/Size of the first chunk
    pieces: List[Any] = field(default_factory=list)
    length: int = 0

    def joined(self):
        if all(isinstance(piece, str) for piece in self.pieces):
            return "".join(self.pieces)
        return b"".join(
            piece.encode("utf-8", "surrogatepass") if isinstance(piece, str) else piece
            for piece in self.pieces
        )


@dataclass
class Chunk:
    """What became of one received chunk.

    ``status`` is 213 (buffered, more to come), 200 (complete: ``data`` is
    the reassembled value), 413 (too large: refused) or 424 (the byte count
    does not match the announced Size).
    """

    status: int
    data: Any = None


class Reassembler:
    """Reassembly of the one incoming large object a client may have open.

    ``max_obj_size`` is the largest object we accept.  Chunks of a refused
    object are answered 413 until its last chunk has gone by.
    """

    def __init__(self, max_obj_size):
        self.max_obj_size = max_obj_size
        self.pending = None  # IncomingObject or None
        self.refused = set()  # keys of refused objects whose last chunk is still to come

    def is_refused(self, key):
        return key in self.refused

    def is_open(self, key):
        return (self.pending is not None and self.pending.key == key) or key in self.refused

    def feed(self, key, item, size=None):
        """Take one chunk: ``item`` (``more_data`` set on all but the last).

        ``size`` is the Meta/Size that applies to the item (the caller
        resolves Item over command Meta).  The caller interrupts another
        open object first (:meth:`interrupt`).
        """
        if key in self.refused:
            if not item.more_data:
                self.refused.discard(key)
            return Chunk(st.TOO_LARGE)
        obj = self.pending
        if obj is None or obj.key != key:
            obj = self.pending = IncomingObject(key, item, size)
            if size is not None and size > self.max_obj_size:
                return self._refuse(key, item)
        piece = item.data
        if not isinstance(piece, (str, bytes)):
            piece, _ = item_text(piece)
            piece = piece or ""
        obj.pieces.append(piece)
        obj.length += data_size(piece)
        if obj.length > self.max_obj_size:
            return self._refuse(key, item)
        if item.more_data:
            return Chunk(st.CHUNK_ACCEPTED)
        self.pending = None
        if obj.declared is not None and obj.declared != obj.length:
            return Chunk(st.SIZE_MISMATCH)
        return Chunk(st.OK, obj.joined())

    def _refuse(self, key, item):
        self.pending = None
        if item.more_data:
            self.refused.add(key)
        return Chunk(st.TOO_LARGE)

    def interrupt(self):
        """Drop the open object (a new command came first); return it, or None."""
        obj, self.pending = self.pending, None
        return obj
