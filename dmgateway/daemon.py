"""The daemon's life cycle around the service tree: what ``tap.py`` needs to
start cleanly or fail with one clear line, hold the SQLite store alone, talk
to systemd, and stop without cutting live sessions.

Nothing here knows about DM: it is process plumbing.
"""

import errno
import fcntl
import gc
import os
import socket

from twisted.internet import error as ierror
from twisted.internet import task
from twisted.logger import Logger

log = Logger(namespace="dmgateway")


class StartError(Exception):
    """A start that cannot go on; the message is the whole line shown."""


# -- one writer per SQLite file -------------------------------------------------


def sqlite_path(uri):
    """The file of an ``sqlite:PATH`` store URI, or None (memory, PostgreSQL)."""
    if not uri.startswith("sqlite:"):
        return None
    from dmgateway.store.sqlite import MEMORY, parse_sqlite_uri

    path = parse_sqlite_uri(uri)
    return None if path == MEMORY else path


class StoreLock:
    """An exclusive ``flock`` on ``PATH.lock`` held for the life of the process.

    The kernel drops it when the process dies, however it dies, so a
    crashed daemon never leaves a stale lock behind.  The lock file holds
    the owner's pid, for the refusal line only.
    """

    def __init__(self, path):
        self.path = path + ".lock"
        self._file = None

    def acquire(self):
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            handle.seek(0)
            owner = handle.read().strip()[:20]
            handle.close()
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StartError(
                    "the SQLite store %s is in use by another dmgateway process%s; "
                    "one SQLite file has one daemon (use PostgreSQL for several)"
                    % (self.path[: -len(".lock")], " (pid %s)" % owner if owner.isdigit() else "")
                )
            raise
        handle.seek(0)
        handle.truncate()
        handle.write("%d\n" % os.getpid())
        handle.flush()
        self._file = handle
        return self

    def release(self):
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


# -- systemd -----------------------------------------------------------------------


def sd_notify(message, environ=None):
    """Send ``message`` (e.g. ``"READY=1"``) to systemd's ``$NOTIFY_SOCKET``.

    Returns whether it was sent; without the variable (not under systemd
    ``Type=notify``) it does nothing.  An ``@`` address is Linux's abstract
    namespace.
    """
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "@/":
        return False
    if address[0] == "@":
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
        except OSError:
            return False
    return True


#: cyclic-GC thresholds of a serving daemon (CPython's defaults: 700, 10, 10)
GC_THRESHOLDS = (10000, 50, 100)


def tune_gc(thresholds=GC_THRESHOLDS):
    """Make the cyclic garbage collector run less often once the daemon serves.

    A DM message allocates thousands of short-lived container objects (parse
    trees, models, log events), nearly all freed by reference counting: with
    the default thresholds the collector ran some 200 times per 1,200 sessions
    (bench/session.py), scanning objects that were about to go anyway, for
    about 0.08 ms of a session's CPU; with these, a third of that.  What
    started the daemon (modules, config, the store's caches) lives for good:
    frozen, no full collection walks it again.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


def watchdog_interval(environ=None):
    """Seconds between ``WATCHDOG=1`` pings systemd asks for, or None.

    Half of ``$WATCHDOG_USEC``, and only if ``$WATCHDOG_PID`` (when set)
    is this process.
    """
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2e6


# -- a failed start in one line ------------------------------------------------------


def failure_line(failure):
    """The one line that says why the start failed (no traceback), and
    whether the failure is one of the expected kinds (a bug is not)."""
    from dmgateway.api.site import ConfigurationError
    from dmgateway.store.model import StoreError

    exc = failure.value
    if isinstance(exc, StartError):
        return str(exc), True
    if isinstance(exc, ierror.CannotListenError):
        reason = exc.socketError
        text = getattr(reason, "strerror", None) or str(reason)
        return "cannot listen on %s:%s: %s" % (exc.interface or "*", exc.port, text), True
    if isinstance(exc, ConfigurationError):
        return str(exc), True
    if isinstance(exc, StoreError):
        return "the store cannot be opened: %s" % (exc,), True
    if isinstance(exc, OSError):
        where = " %s" % (exc.filename,) if exc.filename else ""
        return "cannot open%s: %s" % (where, exc.strerror or exc), True
    return "%s: %s" % (type(exc).__name__, exc), False


# -- stopping without cutting live sessions ----------------------------------------


async def drain(dispatcher, clock, timeout):
    """Refuse new DM sessions; let the live ones end, up to ``timeout`` seconds."""
    deadline = clock.seconds() + timeout
    dispatcher.draining = True
    live = dispatcher.live_count()
    if live:
        log.info("draining: {live} live DM sessions, waiting up to {timeout}s", live=live, timeout=timeout)
    while dispatcher.live_count() and clock.seconds() < deadline:
        await task.deferLater(clock, 0.1, lambda: None)
    left = dispatcher.live_count()
    if live or left:
        log.info(
            "drained: {ended} sessions ended, {left} aborted at the deadline",
            ended=max(live - left, 0),
            left=left,
        )
