"""What the client still has to send, packed into messages under the server's MaxMsgSize.

The :class:`MessagePacker` is a queue of commands (Status, Results, Alert,
the package-1 Replace).  :meth:`MessagePacker.fill` takes as many as fit into
one message, built with the server's own
:class:`~dmgateway.dm.packaging.MessageBuilder`: measured on the encoded
message *with* ``<Final/>`` and with any trailing command the caller needs
(Alert 1222), so whatever it returns fits however the message is closed.  A
Results that cannot fit even in a message of its own goes out as a large
object (dm-protocol §8): the item is cut into chunks, every chunk but the
last ends with ``<MoreData/>``, the first carries ``Meta/Size`` (bytes as
transmitted), the others repeat Format/Type only.  CmdIDs are numbered from
1 in every message; queued commands are never renumbered in place.
"""

from collections import deque
from dataclasses import replace

from ..codec import syncml as sm
from ..dm.commands import data_size
from ..dm.packaging import MessageBuilder

__all__ = ["MessagePacker", "MIN_CHUNK"]

MIN_CHUNK = 64  # don't end a message on a tiny chunk when the next one could take more


class _Entry:
    """A queued command; for Results, how far its items have gone out."""

    __slots__ = ("cmd", "item_index", "offset", "deferred")

    def __init__(self, cmd):
        self.cmd = cmd
        self.item_index = 0
        self.offset = 0  # characters (str) or bytes already sent of items[item_index].data
        self.deferred = False  # already left for a later message once

    @property
    def started(self):
        return self.item_index > 0 or self.offset > 0


def _without_size(meta):
    if meta is None or meta.size is None:
        return meta
    return replace(meta, size=None)


def _cut(item, offset, length, total_size):
    """Part ``[offset:offset+length]`` of ``item``'s data; None length = the rest."""
    data = item.data
    end = len(data) if length is None else offset + length
    more = end < len(data)
    if offset == 0 and more:
        meta = replace(item.meta or sm.Meta(), size=total_size)
    else:
        meta = _without_size(item.meta)
    return sm.Item(target=item.target, source=item.source, meta=meta, data=data[offset:end],
                   more_data=more)


class MessagePacker:
    """Commands waiting to be sent.  ``measure(msg) -> int`` is the encoded size."""

    def __init__(self, measure, min_chunk=MIN_CHUNK):
        self.measure = measure
        self.min_chunk = min_chunk
        self._queue = deque()

    def __len__(self):
        return len(self._queue)

    def __bool__(self):
        return bool(self._queue)

    def extend(self, commands):
        self._queue.extend(_Entry(cmd) for cmd in commands)

    def push_front(self, commands):
        self._queue.extendleft(_Entry(cmd) for cmd in reversed(list(commands)))

    def clear(self):
        self._queue.clear()

    def drop_results(self, msg_ref, cmd_ref):
        """Forget the rest of the Results answering (msg_ref, cmd_ref); True if one was queued."""
        for entry in list(self._queue):
            cmd = entry.cmd
            if isinstance(cmd, sm.Results) and (cmd.msg_ref, cmd.cmd_ref) == (msg_ref, cmd_ref):
                self._queue.remove(entry)
                return True
        return False

    def fill(self, hdr, first, limit, trailer=()):
        """``(body, progressed)`` for one message.

        ``first`` (the SyncHdr Status) always goes in; ``trailer`` commands
        are reserved room for and appended last.  ``limit`` None means no
        MaxMsgSize.  ``progressed`` is False when nothing from the queue fit
        although it is not empty -- the limit is too small to make progress.
        """
        builder = MessageBuilder(hdr, self.measure, limit, trailer)
        for cmd in first:
            builder.add(replace(cmd))
        mandatory = builder.body[:]
        while self._queue:
            entry = self._queue[0]
            if builder.try_add(replace(self._rest(entry))):
                self._queue.popleft()
                continue
            crowded = builder.optional > 0
            waits = not (entry.started or entry.deferred) or not isinstance(entry.cmd, sm.Results)
            if crowded and waits and builder.fits_alone(replace(self._rest(entry)), mandatory):
                entry.deferred = True
                break  # it fits in the next message: send it whole there (once)
            if isinstance(entry.cmd, sm.Results):
                self._chunk(entry, builder, limit, crowded)
            break
        progressed = builder.optional > 0 or not self._queue
        return builder.commands(), progressed

    # -- large Results --------------------------------------------------------

    @staticmethod
    def _rest(entry):
        """The command still to send for ``entry`` (a Results may be part-sent)."""
        cmd = entry.cmd
        if not isinstance(cmd, sm.Results) or not entry.started:
            return cmd
        items = list(cmd.items[entry.item_index:])
        if entry.offset:
            items[0] = _cut(items[0], entry.offset, None, None)
        return replace(cmd, items=items)

    def _chunk(self, entry, builder, limit, crowded):
        """Add to ``builder`` the Results part that fills the rest of its message, if any."""
        cmd = entry.cmd
        sent = []
        index, offset = entry.item_index, entry.offset
        while index < len(cmd.items):
            item = cmd.items[index]
            rest = _cut(item, offset, None, None) if offset else item
            if builder.fits(replace(cmd, items=sent + [rest])):
                sent.append(rest)
                index, offset = index + 1, 0
                continue
            data = item.data
            if not isinstance(data, (str, bytes)) or len(data) - offset < 2:
                break
            total = data_size(data)
            remaining = len(data) - offset

            def make(length, item=item, offset=offset, sent=list(sent)):
                return replace(cmd, items=sent + [_cut(item, offset, length, total)])

            # a chunk of n characters or bytes takes at least n bytes: never try more than that
            longest = min(remaining - 1, max(1, limit - builder.size()))
            mark = builder.mark()
            length, _ = builder.fit_largest(make, longest)
            if length == 0 or (crowded and length < min(self.min_chunk, remaining - 1)):
                builder.rollback(mark)
                break
            entry.item_index, entry.offset = index, offset + length
            return
        if sent and builder.try_add(replace(cmd, items=sent)):
            entry.item_index, entry.offset = index, offset
