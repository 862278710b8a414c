"""
Rows in and out: JSON columns, and row converters generated from the
dataclasses of L{dmgateway.store.model}.

A converter fills each field of the dataclass from the column of the same
name; only a column that needs decoding names a decoder:

    job_from_row = row_converter(Job, commands=json_column("job commands"), atomic=bool)

A field with a default whose column the row lacks keeps its default.  A
field that is a dataclass made of other columns takes a L{nested}; any
other field built from several columns, a L{columns} decoder, which is
given the whole row.

A converter given the C{order} of a query's columns converts its rows as
the cursor returns them (tuples), by position: no dict per row.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Optional

from .model import StoreError

__all__ = ["dump_json", "load_json", "json_column", "columns", "nested", "row_converter", "builder"]


# What json.dumps(value, allow_nan=False, separators=(",", ":")) builds at
# every call (a JSONEncoder, then a C encoder), built once: without the
# check for circular references (its dict of markers would be shared by the
# reactor and pool threads), a circular value meets the recursion limit
# instead, and is refused all the same (see dump_json).
_JSON = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
try:
    from json.encoder import c_make_encoder as _c_make_encoder
except ImportError:  # (a Python without the C accelerator)
    _c_make_encoder = None
if _c_make_encoder is None:
    _ENCODE = json.JSONEncoder(allow_nan=False, separators=(",", ":"), check_circular=False).encode
else:
    _CHUNKS = _c_make_encoder(
        None, _JSON.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )

    def _ENCODE(value: Any, _chunks=_CHUNKS, _join="".join) -> str:
        return _join(_chunks(value, 0))
# what json.loads(text) uses for text
_DECODE = json.JSONDecoder().decode
# ...and what that decode calls for the value itself: a JSON column as the
# store writes it (compact, nothing around the value) is read by this alone,
# without decode's two Python frames and two regular-expression matches
# (about half of a short column's decoding, a few per DM session)
try:
    from json.scanner import c_make_scanner as _c_make_scanner
except ImportError:  # (a Python without the C accelerator)
    _c_make_scanner = None
_SCAN = None if _c_make_scanner is None else _c_make_scanner(json.JSONDecoder())


def dump_json(value: Any, what: str) -> str:
    """C{value} as compact JSON text; C{ValueError} names C{what} if it cannot be."""
    try:
        return _ENCODE(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} is not JSON-serialisable: {e}") from None
    except RecursionError:
        raise ValueError(f"{what} is not JSON-serialisable: circular or nested too deeply") from None


def load_json(text: Optional[str], what: str) -> Any:
    """The value of a stored JSON column (L{None} stays L{None})."""
    if text is None:
        return None
    try:
        if type(text) is str:
            if _SCAN is not None:
                try:
                    value, end = _SCAN(text, 0)
                except StopIteration:  # (not a value where the text starts)
                    pass
                else:
                    if end == len(text):
                        return value
            # (json.loads without its checks of bytes: whitespace around
            # the value, extra data and errors as json.loads has them)
            return _DECODE(text)
        return json.loads(text)
    except ValueError:
        raise StoreError(f"stored {what} is not valid JSON") from None


def json_column(what: str) -> Callable[[Optional[str]], Any]:
    """A decoder of a JSON column; C{what} names it in errors."""
    decode = lambda text: load_json(text, what)  # noqa: E731
    decode.json_what = what  # (what a row converter calls load_json with itself, see _compile)
    return decode


class columns:
    """
    A decoder of one field from several columns: C{build(row)}, e.g. a
    nested dataclass from prefixed columns.
    """

    def __init__(self, build: Callable[[dict], Any]):
        self.build = build


class nested:
    """
    A field that is a dataclass C{cls} made of other columns of the row,
    each named by its field (every field of C{cls}), with its decoder as
    a pair where it needs one::

        client_auth=nested(ClientAuth, type="client_auth_type", nonce=("client_nonce", bytes))
    """

    def __init__(self, cls: type, **fields: Any):
        missing = {f.name for f in dataclasses.fields(cls)} - set(fields)
        if missing or len(fields) != len(dataclasses.fields(cls)):
            raise TypeError(f"nested {cls.__name__} needs a column for each of its fields, no other")
        self.build = builder(cls)
        #: (field, column, decoder or None), in the order of C{cls}'s fields
        self.fields: tuple = ()
        for field in dataclasses.fields(cls):
            spec = fields[field.name]
            column, decode = spec if isinstance(spec, tuple) else (spec, None)
            self.fields += ((field.name, column, decode),)


def builder(cls: type) -> Callable[[dict], Any]:
    """
    C{cls(**values)} for a dataclass given every one of its fields: the
    values are set at once instead of one C{object.__setattr__} each (what
    a frozen dataclass's C{__init__} does: a quarter of a device row's
    cost, read at every session).  A class with C{__post_init__} or without
    an instance C{__dict__} is built by its C{__init__}.
    """
    if hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__:
        return lambda values: cls(**values)
    new = object.__new__

    def build(values: dict) -> Any:
        instance = new(cls)
        instance.__dict__.update(values)
        return instance

    return build


def row_converter(
    cls: type, *, prefix: str = "", order: Optional[tuple] = None, **decoders: Any
) -> Callable[[Any], Any]:
    """
    A function from a row (a dict by column name) to a C{cls} instance.

    @param prefix: what the name of each field's column starts with (a
        joined row's columns of a second table, e.g. C{"job_"}).
    @param order: the names of a query's columns, in order: the function
        then converts its rows as the cursor gives them (tuples), taking
        each column by its position.  Every column the fields are made of
        must be there; no L{columns} decoder (which reads a dict).
    @param decoders: by field name: a callable applied to the column's
        value, a L{nested} dataclass, or a L{columns} given the whole row.
    """
    unknown = set(decoders) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
    plan = []
    for field in dataclasses.fields(cls):
        optional = (
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING
        )
        plan.append((field.name, prefix + field.name, decoders.get(field.name), optional))
    build = builder(cls)
    if order is not None:
        convert = _compile(cls.__name__, plan, build, _positions(cls.__name__, plan, order))
        convert.__name__ = f"{cls.__name__.lower()}_from_tuple"
        convert.__doc__ = f"The L{{{cls.__name__}}} of one row, a tuple of columns {order}."
        return convert
    # The usual row has every column: converted by one generated
    # expression (see _compile); a row that lacks one, field by field.
    whole_row = _compile(cls.__name__, plan, build)

    def convert(row: dict) -> Any:
        try:
            return whole_row(row)
        except KeyError:
            pass
        values = {}
        for name, column, decode, optional in plan:
            if isinstance(decode, columns):
                values[name] = decode.build(row)
                continue
            if isinstance(decode, nested):
                lacking = [inner for _, inner, _ in decode.fields if inner not in row]
                if not lacking:
                    values[name] = decode.build({
                        field: row[inner] if inner_decode is None else inner_decode(row[inner])
                        for field, inner, inner_decode in decode.fields
                    })
                    continue
                if optional:
                    continue
                raise StoreError(f"{cls.__name__} row lacks column {lacking[0]!r}")
            if column not in row:
                if optional:
                    continue
                raise StoreError(f"{cls.__name__} row lacks column {column!r}")
            value = row[column]
            values[name] = value if decode is None else decode(value)
        return cls(**values)

    convert.__name__ = f"{cls.__name__.lower()}_from_row"
    convert.__doc__ = f"The L{{{cls.__name__}}} of one row."
    return convert


def _positions(name: str, plan: list, order: tuple) -> dict[str, int]:
    """Where each column of C{plan} is in a row of columns C{order} (see L{row_converter})."""
    wanted = []
    for _field, column, decode, _optional in plan:
        if isinstance(decode, columns):
            raise TypeError(f"{name}: a converter of rows by position takes no columns decoder")
        wanted += [inner for _, inner, _ in decode.fields] if isinstance(decode, nested) else [column]
    lacking = [column for column in wanted if column not in order]
    if lacking:
        raise TypeError(f"{name}: the columns {lacking} are not in the order given")
    return {column: order.index(column) for column in wanted}


def _compile(
    name: str, plan: list, build: Callable[[dict], Any], positions: Optional[dict] = None
) -> Callable[[Any], Any]:
    """
    The conversion of a row with every column, as the code a hand-written
    converter would be: one dict display in field order (its values are
    computed in that order: the first bad column in field order is the
    one an error tells), a JSON column's C{None} tested in place and
    anything else decoded by a direct call.  A generic loop over the
    fields (a comprehension, a loop of decoders, the lambda of each JSON
    column) cost twice as much for a device's row, read at every DM
    session.  A missing column raises C{KeyError}.  With C{positions}
    (by column), the row is a tuple read by position.
    """
    namespace: dict[str, Any] = {"_build": build, "_load": load_json}

    def value_of(column: str) -> str:
        return f"row[{column!r}]" if positions is None else f"row[{positions[column]}]"

    def item(key: str, value: str, decode: Any, tag: str) -> str:
        what = getattr(decode, "json_what", None)
        if decode is None:
            return f"{key!r}: {value}"
        if what is not None:
            namespace[f"_w{tag}"] = what
            return f"{key!r}: None if (v{tag} := {value}) is None else _load(v{tag}, _w{tag})"
        namespace[f"_d{tag}"] = decode
        return f"{key!r}: _d{tag}({value})"

    items = []
    for index, (field, column, decode, _optional) in enumerate(plan):
        if isinstance(decode, columns):
            namespace[f"_d{index}"] = decode.build
            items.append(f"{field!r}: _d{index}(row)")
        elif isinstance(decode, nested):
            namespace[f"_n{index}"] = decode.build
            inner = ", ".join(
                item(key, value_of(source), inner_decode, f"{index}_{n}")
                for n, (key, source, inner_decode) in enumerate(decode.fields)
            )
            items.append(f"{field!r}: _n{index}({{{inner}}})")
        else:
            items.append(item(field, value_of(column), decode, str(index)))
    source = "def convert(row):\n    return _build({\n        " + ",\n        ".join(items) + ",\n    })\n"
    exec(compile(source, f"<row converter of {name}>", "exec"), namespace)
    return namespace["convert"]
