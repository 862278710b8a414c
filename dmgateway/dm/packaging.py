"""Filling one outgoing message without exceeding the client's MaxMsgSize.

A :class:`MessageBuilder` holds the SyncBody being built.  Commands are
added one at a time; each addition is measured on the whole message *with*
``<Final/>`` (the worst case), so whatever the builder accepted still fits
when the message is closed with or without Final.  CmdIDs are numbered per
message, nested commands included (dm-protocol §3.3).  The server's session
engine and the client library (:mod:`dmgateway.client.packer`) both fill
their messages with it.
"""

from dataclasses import replace

from ..codec.syncml import Container, SyncML

__all__ = ["MessageBuilder", "number"]


def number(cmd, first):
    """Give ``cmd`` (and the commands inside it) CmdIDs from ``first``; return the next free id."""
    cmd.cmd_id = str(first)
    first += 1
    if isinstance(cmd, Container):
        for inner in cmd.commands:
            first = number(inner, first)
    return first


class MessageBuilder:
    """One message under construction.

    ``measure(msg) -> int`` gives the encoded size; ``limit`` is the byte
    budget (None: unlimited, nothing is measured).  Commands added with
    :meth:`add` are mandatory and never refused (the SyncHdr Status); the
    others go through :meth:`try_add`.  ``trailer`` commands (the client's
    Alert 1222) end the message: room is kept for them in every measure and
    :meth:`commands` appends them, numbered after the body.
    """

    def __init__(self, hdr, measure, limit, trailer=()):
        self.hdr = hdr
        self.msg_id = hdr.msg_id
        self.measure = measure
        self.limit = limit
        self.trailer = list(trailer)
        self.body = []
        self.optional = 0  # how many commands came through try_add
        self._next_id = 1

    def add(self, cmd):
        """Append ``cmd`` whether or not it fits."""
        self._next_id = number(cmd, self._next_id)
        self.body.append(cmd)
        return cmd

    def try_add(self, cmd):
        """Append ``cmd`` if the message still fits with it; say whether it did.

        An encoder error for ``cmd`` (a value the wire format cannot carry)
        propagates as the codec's ``ValueError`` with nothing appended.
        """
        start = self._next_id
        after = number(cmd, start)
        if not self._fits(self.body + [cmd]):
            number(cmd, start)  # leave the ids as they would have been; harmless
            return False
        self._next_id = after
        self.body.append(cmd)
        self.optional += 1
        return True

    def take_fitting(self, queue):
        """Move commands from the front of the list ``queue`` into the message
        while they fit; return how many moved.

        The same as ``while queue and try_add(queue[0]): queue.pop(0)`` (ids
        and errors included) with fewer measures: once the first is in, the
        rest are measured together, and when they all fit -- the common case
        -- they go in at once (a message only grows as commands are
        appended, so if the whole list fits every shorter prefix does too).
        When they do not, the rest go one by one as before, but the last is
        not measured again.
        """
        if not queue or not self.try_add(queue[0]):
            return 0
        queue.pop(0)
        count = 1
        misfit = None  # a command known not to fit once all before it are in
        if (len(queue) > 1 and self.limit is not None
                and not any(isinstance(cmd, Container) for cmd in queue)):
            cmds = list(queue)
            before = [cmd.cmd_id for cmd in cmds]
            after = self._next_id
            for cmd in cmds:
                after = number(cmd, after)
            try:
                fits = self._fits(self.body + cmds)
            except ValueError:
                fits = None  # one by one below: the error comes from the command that has it
            if fits:
                self._next_id = after
                self.body.extend(cmds)
                self.optional += len(cmds)
                del queue[:len(cmds)]
                return count + len(cmds)
            for cmd, cmd_id in zip(cmds, before):
                cmd.cmd_id = cmd_id
            if fits is False:  # that whole message was just measured: no need to again
                misfit = cmds[-1]
        while queue:
            cmd = queue[0]
            if cmd is misfit:
                number(cmd, self._next_id)  # as try_add leaves a command that does not fit
                break
            if not self.try_add(cmd):
                break
            queue.pop(0)
            count += 1
        return count

    def fits(self, cmd):
        """Whether the message would still fit with ``cmd`` appended (nothing is appended)."""
        if self.limit is None:
            return True
        start = self._next_id
        number(cmd, start)
        fits = self._fits(self.body + [cmd])
        number(cmd, start)
        return fits

    def fits_alone(self, cmd, mandatory, hdr=None):
        """Whether ``cmd`` would fit in a message holding only ``mandatory`` commands
        (under ``hdr``, by default this message's header)."""
        if self.limit is None:
            return True
        number(cmd, len(mandatory) + 1)
        return self._fits(list(mandatory) + [cmd], hdr)

    def fit_largest(self, make, maximum):
        """The largest ``n`` in 1..maximum for which ``make(n)`` fits, with that command.

        ``make(n)`` builds a fresh command (a chunk of ``n`` units).  Returns
        ``(n, cmd)`` after appending ``cmd``, or ``(0, None)`` if not even
        ``make(1)`` fits.  Binary search: a logarithmic number of measures.
        """
        if maximum < 1:
            return 0, None
        start = self._next_id
        if self.limit is None or self._fits_made(make, maximum, start):
            best = maximum
        else:
            low, high = 0, maximum - 1  # low always fits (0 = nothing), maximum never does
            while low < high:
                middle = (low + high + 1) // 2
                if self._fits_made(make, middle, start):
                    low = middle
                else:
                    high = middle - 1
            best = low
        if best == 0:
            return 0, None
        cmd = make(best)
        self._next_id = number(cmd, start)
        self.body.append(cmd)
        self.optional += 1
        return best, cmd

    def mark(self):
        """A point to :meth:`rollback` to (used to try a whole job at once)."""
        return len(self.body), self.optional, self._next_id

    def rollback(self, mark):
        length, self.optional, self._next_id = mark
        del self.body[length:]

    def commands(self):
        """The body, then the trailer numbered after it (copies: the caller's stay as they are)."""
        if not self.trailer:  # (the server's messages have none)
            return self.body[:]
        return self.body + self._numbered_trailer(_next_free(self.body))

    def build(self, final):
        return SyncML(hdr=self.hdr, body=self.commands(), final=final)

    def size(self, final=True):
        return self.measure(self.build(final))

    def _fits_made(self, make, length, start):
        cmd = make(length)
        number(cmd, start)
        return self._fits(self.body + [cmd])

    def _fits(self, body, hdr=None):
        if self.limit is None:
            return True
        if self.trailer:
            body = body + self._numbered_trailer(_next_free(body))
        return self.measure(SyncML(hdr=hdr or self.hdr, body=body, final=True)) <= self.limit

    def _numbered_trailer(self, first):
        trailer = []
        for cmd in self.trailer:
            cmd = replace(cmd)
            first = number(cmd, first)
            trailer.append(cmd)
        return trailer


def _next_free(body):
    """The CmdID after the last of ``body`` (numbered from 1, nested commands included)."""
    return 1 + sum(_count(cmd) for cmd in body)


def _count(cmd):
    if isinstance(cmd, Container):
        return 1 + sum(_count(inner) for inner in cmd.commands)
    return 1
