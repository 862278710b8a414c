"""What the dispatcher keeps to stop attackers who can reach the DM listener.

* :class:`PeerLockouts` counts failed device authentications per *device id
  and peer address*: a guesser at one address locks out only itself, never
  the real device calling from another.  (The store keeps a much higher
  per-device ceiling against guessing spread over many addresses.)
* The same class counts *session guesses* per peer address: messages that
  name a RespURI token or SessionID of no session of theirs.  Past the
  budget the address is refused before its messages are even decoded.
* :class:`StoreOutage` turns a failing store into one log line when the
  outage starts and one when it ends, and says how long clients should wait.

Everything here is in memory and per process; lockouts end by themselves
after ``[auth] lockout`` seconds or when an operator clears them.
"""

from twisted.logger import Logger

from dmgateway.auth.ratelimit import FailureLimiter

log = Logger(namespace="dmgateway.guard")

#: keys each limiter tracks at most (least recently touched dropped first):
#: large enough that a guesser cannot flush its own lockout by spraying
MAX_KEYS = 100_000


def peer_host(peer):
    """The address part of a ``host:port`` peer string (None stays None)."""
    if peer is None:
        return None
    peer = str(peer)
    host, sep, port = peer.rpartition(":")
    if sep and port.isdigit() and host:
        return host.strip("[]")
    return peer


class PeerLockouts:
    """Authentication failures per (device, address) and guesses per address."""

    def __init__(self, auth_config):
        self.failures = FailureLimiter(
            max_failures=auth_config.max_failures,
            window=auth_config.failure_window,
            lockout=auth_config.lockout,
            max_keys=MAX_KEYS,
        )
        self.guesses = FailureLimiter(
            max_failures=auth_config.max_session_guesses,
            window=auth_config.failure_window,
            lockout=auth_config.lockout,
            max_keys=MAX_KEYS,
        )

    # -- authentication failures --------------------------------------------

    def locked(self, device_id, host, now):
        return self.failures.blocked((device_id, host), now)

    def auth_failed(self, device_id, host, now):
        """Count one failure; True when it locks this (device, address) out now."""
        key = (device_id, host)
        if self.failures.blocked(key, now):
            return False
        return self.failures.failure(key, now)

    def auth_succeeded(self, device_id, host):
        self.failures.success((device_id, host))

    def lockouts(self, device_id, now):
        """``[(host, until)]`` of the addresses locked out for ``device_id`` now."""
        return [
            (key[1], until)
            for key, until in self.failures.locks(now)
            if key[0] == device_id
        ]

    def clear(self, device_id):
        """Lift every lockout and failure count of ``device_id``; how many were locked."""
        keys = [key for key in self.failures.keys() if key[0] == device_id]
        for key in keys:
            self.failures.success(key)
        return len(keys)

    # -- session guesses -------------------------------------------------------

    def guessing(self, host, now):
        """Whether ``host`` spent its budget of wrong tokens / SessionIDs."""
        return host is not None and self.guesses.blocked(host, now)

    def guessed(self, host, now):
        """Count one wrong token or SessionID from ``host``; True when that blocks it."""
        if host is None or self.guesses.blocked(host, now):
            return False
        return self.guesses.failure(host, now)


class StoreOutage:
    """One line when the store fails, one when it works again."""

    def __init__(self, clock, retry_after):
        self.clock = clock
        self.retry_after = retry_after
        self.since = None
        self.errors = 0

    @property
    def active(self):
        return self.since is not None

    def failed(self, error):
        """Note a failure; True if it starts an outage."""
        self.errors += 1
        if self.since is not None:
            return False
        self.since = self.clock.seconds()
        log.critical(
            "store unavailable: {error}; DM and API requests answer 503 until it is back",
            error=str(error),
        )
        return True

    def ended(self):
        """Note a success; True if it ends an outage."""
        if self.since is None:
            return False
        duration = self.clock.seconds() - self.since
        log.warn(
            "store available again after {duration:.1f} s ({errors} failed requests)",
            duration=duration,
            errors=self.errors,
        )
        self.since = None
        self.errors = 0
        return True
