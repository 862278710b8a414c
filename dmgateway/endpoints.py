"""Splitting an endpoint description string the way Twisted does (pure).

``serverFromString``/``clientFromString`` read ``tcp:8080:interface=127.0.0.1``
as parameters separated by ``:``.  Within a parameter the first ``=`` separates
a name from its value; after it ``=`` is plain text, so ``a=b=c`` names ``a``
with the value ``b=c``.  A backslash makes the next character plain text:
``unix:/tmp/a\\:b`` is the path ``/tmp/a:b`` and ``\\=`` keeps a parameter
positional.  The endpoint type is the first positional parameter.  The
listener (``bearers``) and ``--check-config`` both read endpoints through
:func:`split_endpoint`, so they cannot disagree about one.
"""

__all__ = ["EndpointSyntaxError", "split_endpoint", "split_parameters"]


class EndpointSyntaxError(ValueError):
    """An endpoint description that cannot be split into parameters."""


def split_parameters(description: str) -> list[tuple[str, ...]]:
    """The ``:``-separated parameters of ``description``, escapes resolved:
    ``(value,)`` for a positional one, ``(name, value)`` for a named one.

    ``split_parameters("tcp:80:a=b=c")`` is ``[("tcp",), ("80",), ("a", "b=c")]``.
    Raises :class:`EndpointSyntaxError` for a trailing lone backslash.
    """
    params: list[tuple[str, ...]] = []
    current: list[str] = [""]
    chars = iter(description)
    for char in chars:
        if char == "\\":
            try:
                current[-1] += next(chars)
            except StopIteration:
                raise EndpointSyntaxError("ends with a lone backslash") from None
        elif char == ":":
            params.append(tuple(current))
            current = [""]
        elif char == "=" and len(current) == 1:
            current.append("")
        else:
            current[-1] += char
    params.append(tuple(current))
    return params


def split_endpoint(description: str) -> tuple[str, list[str], dict[str, str]]:
    """``(type, positional args, keyword args)`` of an endpoint description.

    ``split_endpoint("ssl:8443:privateKey=k.pem")`` is
    ``("ssl", ["8443"], {"privateKey": "k.pem"})``.  As in Twisted, a name
    given twice keeps its last value.  Raises :class:`EndpointSyntaxError`
    when there is no type (no positional parameter, or an empty one).
    """
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for param in split_parameters(description):
        if len(param) == 1:
            args.append(param[0])
        else:
            kwargs[param[0]] = param[1]
    if not args or not args[0]:
        raise EndpointSyntaxError("no endpoint type (like tcp: or ssl:)")
    return args[0], args[1:], kwargs
