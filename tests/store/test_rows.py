"""Row converters generated from the model's dataclasses (L{dmgateway.store.rows})."""

from dataclasses import dataclass
from typing import Optional

import pytest

from dmgateway.store import StoreError
from dmgateway.store.rows import columns, dump_json, json_column, load_json, row_converter


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
