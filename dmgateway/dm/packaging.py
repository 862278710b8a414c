"""Filling one outgoing message without exceeding the client's MaxMsgSize.

A :class:`MessageBuilder` holds the SyncBody being built.  Commands are
added one at a time; each addition is measured on the whole message *with*
``<Final/>`` (the worst case), so whatever the builder accepted still fits
when the message is closed with or without Final.  CmdIDs are numbered per
message, nested commands included (dm-protocol §3.3).  The server's session
engine and the client library (:mod:`dmgateway.client.packer`) both fill
their messages with it.

Given ``encode``, the builder measures by encoding and keeps the bytes of
the last message it measured: :meth:`encoded` hands them back when the
message finally sent is that very one (the server's last message of a
package, whose last measure was taken with Final, is the common case), so
the reply is not encoded once more.
"""

from dataclasses import replace
from operator import is_

from ..codec.syncml import Container, SyncML

__all__ = ["MessageBuilder", "number"]

# fit_largest's search guesses freely this many times (counting the two
# first sizes), then halves after each guess that did not halve the span
_GUESSES = 5


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

    With ``encode(msg) -> bytes`` (then ``measure`` may be None), measures
    are ``len(encode(msg))`` and the bytes of the last stay for
    :meth:`encoded`; whoever changes a command or the header in place after
    it was measured (not through this builder) must call :meth:`forget`.
    """

    def __init__(self, hdr, measure, limit, trailer=(), encode=None):
        self.hdr = hdr
        self.msg_id = hdr.msg_id
        self.measure = measure  # (not a bound method of ours: a cycle would keep every builder for the GC)
        self.encode = encode
        self._measured = None  # (SyncML, bytes) of the last measure, with encode
        self._sized = None  # (body, size) of the last measure under self.hdr: for guesses only
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
        if self.limit is not None and not self._fits(self.body + [cmd]):
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
        if self.limit is None:  # (nothing is measured: all of them)
            for cmd in queue:
                self._next_id = number(cmd, self._next_id)
            count = len(queue)
            self.body.extend(queue)
            self.optional += count
            del queue[:]
            return count
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

    def try_add_all(self, cmds):
        """Append all of ``cmds`` if the message still fits with them; say whether it did.

        What ``all(try_add(cmd) for cmd in cmds)`` decides, with one measure
        (a message only grows as commands are appended), except that nothing
        is appended when they do not all fit.  An encoder error propagates
        with nothing appended.
        """
        if not cmds:
            return True
        after = self._next_id
        for cmd in cmds:
            after = number(cmd, after)
        if self.limit is not None and not self._fits(self.body + cmds):  # (unlimited: nothing to measure)
            return False
        self._next_id = after
        self.body.extend(cmds)
        self.optional += len(cmds)
        return True

    def add_fitting_prefix(self, make, most):
        """Append the longest run of commands ``make(0)``, ``make(1)``, ...
        (at most ``most``) that fits; return (how many, whether the next
        was measured not to fit after them).

        ``make(i)`` gives the i-th command, or None where the run ends; it
        is asked in order, once for each, and only as far as the search
        needs.  What ``try_add`` one by one until the first refusal appends
        (ids included), with fewer measures: an interpolation search between
        a prefix that fits and one that does not (sizes grow with the
        prefix), two measures when all fit.  The commands made and left out
        are numbered after those appended (to be discarded).  An encoder
        error propagates with nothing appended.
        """
        made, ends = [], []

        def prefix(length):  # the first ``length`` commands, or all the run has
            while len(made) < length:
                cmd = make(len(made))
                if cmd is None:
                    break
                ends.append(number(cmd, ends[-1] if ends else self._next_id))
                made.append(cmd)
            return made[:length]

        if self.limit is None:
            count, misfit = len(prefix(most)), False
        else:
            count, misfit = self._longest_prefix(prefix, most)
        if count:
            self._next_id = ends[count - 1]
            self.body.extend(made[:count])
            self.optional += count
        return count, misfit

    def _longest_prefix(self, prefix, most):
        """The largest ``n`` for which ``body + prefix(n)`` fits (0: none), and
        whether ``n + 1`` commands were measured not to fit.

        Sizes grow with ``n``; the search keeps ``low`` (fits, or 0) and
        ``high`` (does not fit, or is past the run's end) and guesses where
        the limit falls from the sizes measured, as if the commands were of
        like sizes: the guesses only choose what is measured, never the
        answer.
        """
        base = self._known_size()  # the size of the body alone, wanted for guesses only
        low, low_size, high, high_size = 0, base, most + 1, None
        while high - low > 1:
            if low == 0:  # the first: one command, as try_add
                guess = 1
            elif high_size is not None:  # between two measures
                guess = low + (self.limit - low_size) * (high - low) // max(high_size - low_size, 1)
            else:  # on from the sizes so far
                if base is None:
                    base = self._size(self.body)
                guess = low + (self.limit - low_size) * low // max(low_size - base, 1)
            guess = min(max(guess, low + 1), high - 1)
            cmds = prefix(guess)
            if len(cmds) < guess:  # the run ends before: all of it, if more than low
                high, high_size = len(cmds) + 1, None
                if high - low <= 1:
                    break
                guess = len(cmds)
            size = self._size(self.body + cmds)
            if size <= self.limit:
                low, low_size = guess, size
            else:
                high, high_size = guess, size
        return low, high_size is not None

    def _known_size(self):
        """The size of the body as it is, if the last measure was of it (an estimate:
        a command changed in place since is not seen)."""
        sized = self._sized
        if sized is not None:
            body, size = sized
            if len(body) == len(self.body) and all(map(is_, body, self.body)):
                return size
        return None

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
        ``make(1)`` fits.  ``make(maximum)`` is measured first; then a search
        between a length that fits and one that does not, guessing where the
        limit falls as if the size grew evenly with ``n`` (a chunk's does,
        nearly) and halving when a guess gained little: a few measures
        where a binary search takes a logarithmic number.  Below
        ``maximum`` the size grows with ``n`` (every such chunk has
        MoreData), so the answer is the binary search's.
        """
        if maximum < 1:
            return 0, None
        start = self._next_id
        made = {}  # length -> the command measured for it
        if self.limit is None:
            best = maximum
        else:
            high_size = self._made_size(make, maximum, start, made)
            if high_size <= self.limit:
                best = maximum
            else:
                best = self._largest_length(make, maximum, high_size, start, made)
        if best == 0:
            return 0, None
        cmd = made.get(best)
        if cmd is None:
            cmd = make(best)
        self._next_id = number(cmd, start)
        self.body.append(cmd)
        self.optional += 1
        return best, cmd

    def _largest_length(self, make, high, high_size, start, made):
        """The largest ``n`` < ``high`` for which ``make(n)`` fits (0: none), ``high``
        measured not to fit (``high_size``).

        Each guess is where the line through the last two sizes measured
        meets the limit (the first line starts at the body alone); after a
        few guesses, halving, so that the search ends whatever the sizes.
        """
        low, low_size = 0, self._known_size()
        if low_size is None:
            low_size = self._size(self.body)
        points = [(0, low_size), (high, high_size)]
        halve = False
        while high - low > 1:
            (n1, s1), (n2, s2) = points[-2:]
            if halve or s1 == s2:
                guess = (low + high) // 2
            else:
                guess = n1 + (self.limit - s1) * (n2 - n1) // (s2 - s1)
                guess = min(max(guess, low + 1), high - 1)
            span = high - low
            size = self._made_size(make, guess, start, made)
            points.append((guess, size))
            if size <= self.limit:
                low = guess
            else:
                high = guess
            # a guess that did not halve the span is followed by halving,
            # past the first few (near the limit a guess is off by a unit or two)
            halve = not halve and len(points) > _GUESSES and (high - low) * 2 > span
        return low

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
        return SyncML(self.hdr, self.commands(), final)  # (positional: hdr, body, final)

    def encoded(self, msg):
        """``encode(msg)``: the bytes of the last measure when ``msg`` is the
        message measured (the same header and command objects, Final the
        same), else a fresh encode."""
        measured = self._measured
        if measured is not None:
            last, data = measured
            if (last.hdr is msg.hdr and last.final == msg.final and len(last.body) == len(msg.body)
                    and all(map(is_, last.body, msg.body))):
                return data
        return self.encode(msg)

    def forget(self):
        """Drop the bytes kept from the last measure (something measured changed in place)."""
        self._measured = self._sized = None

    def _measure(self, msg):
        if self.encode is None:
            return self.measure(msg)
        data = self.encode(msg)
        self._measured = (msg, data)
        return len(data)

    def size(self, final=True):
        return self._measure(self.build(final))

    def _made_size(self, make, length, start, made):
        cmd = made[length] = make(length)
        number(cmd, start)
        return self._size(self.body + [cmd])

    def _fits(self, body, hdr=None):
        if self.limit is None:
            return True
        return self._size(body, hdr) <= self.limit

    def _size(self, body, hdr=None):
        """The size of the message of ``body`` (and the trailer) with Final."""
        measured = body
        if self.trailer:
            body = body + self._numbered_trailer(_next_free(body))
        msg = SyncML(hdr=hdr or self.hdr, body=body, final=True)
        if self.encode is None:
            size = self.measure(msg)
        else:  # (as _measure, one call less: this is every measure)
            data = self.encode(msg)
            self._measured = (msg, data)
            size = len(data)
        if hdr is None:
            self._sized = (measured, size)
        return size

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
