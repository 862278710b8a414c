"""What the client still has to send, packed into messages under the server's MaxMsgSize.

The :class:`Outbox` is a queue of commands (Status, Results, Alert, the
package-1 Replace).  :meth:`Outbox.fill` takes as many as fit into one
message, measured on the encoded message *with* ``<Final/>`` and with any
trailing command the caller needs (Alert 1222), so whatever it returns fits
however the message is closed.  A Results that cannot fit even in a message
of its own goes out as a large object (dm-protocol §8): the item is cut into
chunks, every chunk but the last ends with ``<MoreData/>``, the first carries
``Meta/Size`` (bytes as transmitted), the others repeat Format/Type only.
CmdIDs are numbered from 1 in every message.
"""

from collections import deque
from dataclasses import replace

from ..codec import syncml as sm
from .commands import data_size

__all__ = ["Outbox", "MIN_CHUNK"]

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


class Outbox:
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
        body = [replace(cmd, cmd_id=str(n)) for n, cmd in enumerate(first, 1)]
        mandatory = len(body)
        trailer = list(trailer)

        def size(commands):
            numbered = commands + [replace(cmd, cmd_id=str(len(commands) + n))
                                   for n, cmd in enumerate(trailer, 1)]
            return self.measure(sm.SyncML(hdr=hdr, body=numbered, final=True))

        def fits(commands):
            return limit is None or size(commands) <= limit

        while self._queue:
            entry = self._queue[0]
            whole = replace(self._rest(entry), cmd_id=str(len(body) + 1))
            if fits(body + [whole]):
                body.append(whole)
                self._queue.popleft()
                continue
            crowded = len(body) > mandatory
            waits = not (entry.started or entry.deferred) or not isinstance(entry.cmd, sm.Results)
            if crowded and waits and fits(
                    body[:mandatory] + [replace(whole, cmd_id=str(mandatory + 1))]):
                entry.deferred = True
                break  # it fits in the next message: send it whole there (once)
            if isinstance(entry.cmd, sm.Results):
                part = self._chunk(entry, body, fits, size, limit, crowded)
                if part is not None:
                    body.append(part)
            break
        progressed = len(body) > mandatory or not self._queue
        body += [replace(cmd, cmd_id=str(len(body) + n)) for n, cmd in enumerate(trailer, 1)]
        return body, progressed

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

    def _chunk(self, entry, body, fits, size, limit, crowded):
        """The Results part that fills the rest of this message, or None."""
        cmd = entry.cmd
        cmd_id = str(len(body) + 1)
        sent = []
        index, offset = entry.item_index, entry.offset
        while index < len(cmd.items):
            item = cmd.items[index]
            rest = _cut(item, offset, None, None) if offset else item
            if fits(body + [replace(cmd, cmd_id=cmd_id, items=sent + [rest])]):
                sent.append(rest)
                index, offset = index + 1, 0
                continue
            data = item.data
            if not isinstance(data, (str, bytes)) or len(data) - offset < 2:
                break
            total = data_size(data)
            remaining = len(data) - offset

            def attempt(length):
                part = _cut(item, offset, length, total)
                return replace(cmd, cmd_id=cmd_id, items=sent + [part])

            length = min(remaining - 1, max(1, limit - size(body + [attempt(0)])))
            while length > 0:
                over = size(body + [attempt(length)]) - limit
                if over <= 0:
                    break
                length -= max(1, over)
            if length <= 0 or (crowded and length < min(self.min_chunk, remaining - 1)):
                break
            sent.append(_cut(item, offset, length, total))
            offset += length
            break
        if not sent:
            return None
        entry.item_index, entry.offset = index, offset
        return replace(cmd, cmd_id=cmd_id, items=sent)
