"""Keeping secrets out of log lines and messages (pure).

One home for every mask the gateway applies before it shows a value:

- :func:`redact_uri`: a URI (the store's ``postgresql://``, a webhook URL)
  with the password of its user info and every secret-named query parameter
  (``password``, ``sslpassword``, ``token``...) replaced by ``***``;
- :func:`redact_text`: the same inside free text (a parser's error message
  that quotes the URI, a conninfo string);
- :func:`is_secret_name`: whether a log field or parameter name holds a secret.
"""

import re
from urllib.parse import urlsplit

__all__ = ["MASK", "SECRET_WORDS", "is_secret_name", "redact_text", "redact_uri"]

MASK = "***"

#: A name holding one of these words holds a secret (``password``, ``sslpassword``,
#: ``api_token``, ``client_secret``, ``psk_key``, ``snmp_community``...).
SECRET_WORDS = ("password", "secret", "token", "passphrase", "psk", "community")

#: the password of ``scheme://user:password@``, up to the last ``@`` before the query: a
#: password may hold a ``/`` or ``@`` its writer did not percent-encode
_USERINFO_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^\s?#]*@")
#: a value: quoted as libpq's conninfo quotes (``'s3 cr3t'``, backslash escapes), or bare
_VALUE = r"""(?:'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s&#'"]+)"""
_SECRET_ASSIGNMENT = re.compile(
    r"\b([A-Za-z_]*(?:%s)[A-Za-z_]*=)%s" % ("|".join(SECRET_WORDS), _VALUE), re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether ``name`` (a log field, a query parameter) holds a secret."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact_uri(uri: str, *, path_only: bool = False) -> str:
    """``uri`` fit for a log line.

    The user info's password and the value of every secret-named query
    parameter become ``***``: ``postgresql://gw:pw@db/dm?sslpassword=k`` gives
    ``postgresql://gw:***@db/dm?sslpassword=***``.  With ``path_only`` only
    ``scheme://host[:port]/path`` is kept (no user info, query or fragment):
    for a third party's URL, whose parameters may be credentials under any
    name.
    """
    parts = urlsplit(uri)
    if path_only:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return f"{parts.scheme}://{host}{parts.path}"
    uri = _USERINFO_PASSWORD.sub(r"\1" + MASK + "@", uri, count=1)
    head, sep, query = uri.partition("?")
    if not sep:
        return uri
    query, hash_, fragment = query.partition("#")
    pairs = []
    for pair in query.split("&"):
        name = pair.split("=", 1)[0]
        pairs.append(f"{name}={MASK}" if is_secret_name(name) else pair)
    return head + sep + "&".join(pairs) + hash_ + fragment


def redact_text(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` and the value
    of any ``password=...``-like assignment (``sslpassword=``, ``token=``) hidden."""
    text = _USERINFO_PASSWORD.sub(r"\1" + MASK + "@", text)
    return _SECRET_ASSIGNMENT.sub(r"\1" + MASK, text)
