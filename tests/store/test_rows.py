"""Row converters generated from the model's dataclasses (L{dmgateway.store.rows})."""

import json
from dataclasses import dataclass
from typing import Optional

import pytest

from dmgateway.store import StoreError
from dmgateway.store.rows import builder, columns, dump_json, json_column, load_json, nested, row_converter


@dataclass(frozen=True)
class Pair:
    name: str
    flag: bool
    doc: Optional[dict]
    both: tuple
    extra: Optional[str] = "default"


PAIR = row_converter(
    Pair,
    flag=bool,
    doc=json_column("pair doc"),
    both=columns(lambda row: (row["left"], row["right"])),
)


def test_fields_by_name_decoded_where_named():
    row = {"name": "a", "flag": 1, "doc": '{"k":[1]}', "left": 1, "right": 2, "unused": "x"}
    assert PAIR(row) == Pair("a", True, {"k": [1]}, (1, 2))
    assert PAIR(dict(row, extra="given", doc=None)).extra == "given"


def test_a_missing_column_without_default_is_a_store_error():
    with pytest.raises(StoreError, match="lacks column 'flag'"):
        PAIR({"name": "a", "doc": None, "left": 1, "right": 2})


def test_bad_stored_json_is_a_store_error():
    with pytest.raises(StoreError, match="pair doc"):
        PAIR({"name": "a", "flag": 0, "doc": "{", "left": 1, "right": 2})


def test_a_decoder_for_no_field_is_refused():
    with pytest.raises(TypeError, match="nope"):
        row_converter(Pair, nope=bool)


def test_json_round_trip_and_refusals():
    assert load_json(dump_json({"a": [1, "é"]}, "x"), "x") == {"a": [1, "é"]}
    assert load_json(None, "x") is None
    with pytest.raises(ValueError, match="thing is not JSON"):
        dump_json({"a": float("nan")}, "thing")


def test_a_row_with_every_column_converts_as_one_without_some():
    full = {"name": "a", "flag": 0, "doc": '{"k":1}', "left": 1, "right": 2, "extra": "x"}
    assert PAIR(full) == Pair("a", False, {"k": 1}, (1, 2), "x")
    lacking = dict(full)
    del lacking["extra"]
    assert PAIR(lacking) == Pair("a", False, {"k": 1}, (1, 2))


def test_the_first_bad_column_in_field_order_is_told():
    @dataclass(frozen=True)
    class Two:
        first: Optional[dict]
        second: Optional[dict]

    convert = row_converter(Two, first=json_column("first doc"), second=json_column("second doc"))
    for row in ({"first": "{", "second": "["}, {"first": "{", "second": "[", "more": 1}):
        with pytest.raises(StoreError, match="first doc"):
            convert(row)


def test_dump_json_is_json_dumps_compact():
    for value in ({"a": [1, 2.5, None, True]}, ["é", "\u2603", {"x": {}}], "text", 3, {"k": "\x00"}):
        assert dump_json(value, "v") == json.dumps(value, allow_nan=False, separators=(",", ":"))
    with pytest.raises(ValueError, match="v is not JSON"):
        dump_json({"a": object()}, "v")


def test_load_json_of_text_and_of_bytes():
    assert load_json(' {"a": [1]} ', "x") == {"a": [1]}
    assert load_json(b'{"a": "\xc3\xa9"}', "x") == {"a": "é"}
    for bad in ("", "\ufeff{}", "{} x", b"{"):
        with pytest.raises(StoreError, match="stored x is not valid JSON"):
            load_json(bad, "x")


def test_load_json_reads_what_json_loads_reads():
    # (a compact value is read by the scanner alone, anything else as before)
    for text in ('{"a":[1,2.5,null,true],"b":"\\u00e9x"}', "[]", "0", '"s"', "NaN", "-Infinity", " [1]", "[1] ",
                 "\n{}\t", '{"a": {"b": [{}]}}', "1e400"):
        assert repr(load_json(text, "x")) == repr(json.loads(text))  # (repr: NaN is not NaN)
    for bad in ("[1] [2]", "[1,]", "{'a': 1}", "[", "tru", " ", "1 2"):
        with pytest.raises(StoreError, match="stored x is not valid JSON"):
            load_json(bad, "x")


def test_a_builder_makes_what_the_constructor_makes():
    values = {"name": "a", "flag": True, "doc": {"k": 1}, "both": (1, 2), "extra": "x"}
    built = builder(Pair)(values)
    assert built == Pair(**values) and repr(built) == repr(Pair(**values))
    with pytest.raises(AttributeError):
        built.name = "b"  # still frozen

    @dataclass(frozen=True)
    class Checked:
        value: int

        def __post_init__(self):
            if self.value < 0:
                raise ValueError("negative")

    @dataclass(frozen=True, slots=True)
    class Slotted:
        value: int

    with pytest.raises(ValueError):
        builder(Checked)({"value": -1})  # (its __init__ runs)
    assert builder(Slotted)({"value": 3}) == Slotted(3)


def test_a_prefix_names_the_columns_of_a_joined_row():
    joined = row_converter(
        Pair, prefix="p_", flag=bool, doc=json_column("pair doc"),
        both=columns(lambda row: (row["p_left"], row["p_right"])),
    )
    row = {"name": "device's", "p_name": "a", "p_flag": 1, "p_doc": None, "p_left": 1, "p_right": 2}
    assert joined(row) == Pair("a", True, None, (1, 2))
    assert joined(dict(row, p_extra="x")).extra == "x"
    with pytest.raises(StoreError, match="lacks column 'p_flag'"):
        joined({"name": "a", "flag": 1, "p_name": "a", "p_doc": None, "p_left": 1, "p_right": 2})


@dataclass(frozen=True)
class Auth:
    kind: str
    key: bytes


@dataclass(frozen=True)
class Account:
    name: str
    auth: Auth
    doc: Optional[dict]
    extra: Optional[str] = "default"


ACCOUNT_DECODERS = {
    "auth": nested(Auth, kind="auth_kind", key=("auth_key", bytes)),
    "doc": json_column("account doc"),
}
ACCOUNT_ROW = {"name": "a", "auth_kind": "md5", "auth_key": bytearray(b"k"), "doc": '{"k":1}', "extra": "x"}
ACCOUNT = Account("a", Auth("md5", b"k"), {"k": 1}, "x")


def test_a_nested_dataclass_is_made_of_its_columns():
    convert = row_converter(Account, **ACCOUNT_DECODERS)
    account = convert(ACCOUNT_ROW)
    assert account == ACCOUNT and type(account.auth.key) is bytes
    # a row without some column: field by field, as any other field
    lacking = dict(ACCOUNT_ROW)
    del lacking["extra"]
    assert convert(lacking) == Account("a", Auth("md5", b"k"), {"k": 1})
    del lacking["auth_key"]
    with pytest.raises(StoreError, match="lacks column 'auth_key'"):
        convert(lacking)


def test_a_nested_dataclass_names_a_column_for_each_field():
    with pytest.raises(TypeError, match="a column for each of its fields"):
        nested(Auth, kind="auth_kind")
    with pytest.raises(TypeError, match="a column for each of its fields"):
        nested(Auth, kind="auth_kind", key="auth_key", other="x")


def test_rows_by_position_convert_as_rows_by_name():
    order = ("other", "doc", "extra", "auth_key", "name", "auth_kind")
    convert = row_converter(Account, order=order, **ACCOUNT_DECODERS)
    assert convert(tuple(ACCOUNT_ROW.get(column, "?") for column in order)) == ACCOUNT
    assert convert(("?", None, None, b"", "b", "none")) == Account("b", Auth("none", b""), None, None)
    with pytest.raises(StoreError, match="account doc"):
        convert(("?", "{", None, b"", "b", "none"))
    # (with a prefix, as a joined row's)
    joined = row_converter(Pair, prefix="p_", order=("name", "p_name", "p_flag", "p_doc", "p_both", "p_extra"),
                           flag=bool, doc=json_column("pair doc"))
    assert joined(("device's", "a", 1, None, (1, 2), "x")) == Pair("a", True, None, (1, 2), "x")


def test_rows_by_position_have_every_column_of_the_fields():
    # (a field with a default too: its column missing from a query would
    # make it its default in every row, silently)
    with pytest.raises(TypeError, match=r"\['extra'\] are not in the order"):
        row_converter(Account, order=("name", "auth_kind", "auth_key", "doc"), **ACCOUNT_DECODERS)
    with pytest.raises(TypeError, match="no columns decoder"):
        row_converter(Pair, order=("name", "flag", "doc", "extra"), both=columns(lambda row: ()))
