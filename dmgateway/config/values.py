"""Value checks and file keys shared by the config section classes.

The section classes (:mod:`.gateway`, :mod:`.bearers`, :mod:`.delegation`,
:mod:`.services`) pass the ``validate=`` checks here to a
:class:`~dmgateway.config.reader.SectionReader` (each returns a problem text
or None) and read secret and token files through the readers here.
"""

from __future__ import annotations

import os
import re

from dmgateway.config import checks
from dmgateway.config.reader import SectionReader

DAY = 86400


def single_word(value: str) -> str | None:
    if any(c.isspace() for c in value):
        return "must not contain whitespace"
    return None


def node_name(value: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", value):
        return "bad node name %r (letters, digits, '.', '_', '-'; at most 63)" % (value,)
    return None


def url_path(value: str) -> str | None:
    if not value.startswith("/") or re.search(r"[\s?#]", value):
        return "bad path %r (must start with '/', no spaces, '?' or '#')" % (value,)
    return None


def msisdn_prefix(value: str) -> str | None:
    if not re.fullmatch(r"\+?[0-9]{1,15}", value):
        return "bad MSISDN prefix %r (international digits, '+' optional)" % (value,)
    return None


def max_length(limit: int):
    def check(value: str) -> str | None:
        if len(value.encode("utf-8")) > limit:
            return "longer than %d characters" % (limit,)
        return None
    return check


def host_port(default_port: int | None):
    def check(value: str) -> str | None:
        try:
            checks.parse_host_port(value, default_port)
        except ValueError as e:
            return str(e)
        return None
    return check


def secret_file(reader: SectionReader, key: str, default: str = "", *,
                 required: bool = False) -> str:
    """A file holding a secret: readable and not empty (when active)."""
    path = reader.readable_file(key, default, required=required)
    if path and reader.active and checks.check_readable_file(path) is None:
        try:
            if os.path.getsize(path) == 0:
                reader.problem(key, "file %r is empty" % (path,))
        except OSError as e:
            reader.problem(key, "cannot read %r: %s" % (path, e.strerror))
    return path


def token_file(reader: SectionReader, key: str, default: str) -> str:
    """The API token file: a readable, non-empty file, or absent where the
    daemon can create it at its first start (mode 0600, a random token)."""
    path = reader.text(key, default, empty_ok=False)
    if not path or not reader.active:
        return path
    if not os.path.lexists(path):
        problem = checks.check_creatable_file(path)
    else:
        problem = checks.check_readable_file(path)
        if problem is None and os.path.getsize(path) == 0:
            problem = "file %r is empty" % (path,)
    if problem is not None:
        reader.problem(key, problem)
    return path


def check_psk_support(reader: SectionReader, key: str) -> None:
    from dmgateway.bearers.tlspsk import psk_available

    if not psk_available():
        reader.problem(key, "TLS-PSK needs OpenSSL PSK support in the installed cryptography "
                       "package's binding, which it lacks")
