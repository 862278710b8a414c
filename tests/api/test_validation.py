"""
Validation of API input: every rule, and nothing but ValidationError on
any input.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from dmgateway.api.validation import (
    ValidationError, parse_device_id, parse_int_param, parse_job_id, parse_json,
    parse_wait_param, query_value, validate_command, validate_device,
    validate_dm_uri, validate_job,
)

ACCOUNT = {
    "server_id": "dms.example.com",
    "client_auth": {"type": "hmac", "name": "dmclient01", "secret": "a"},
    "server_auth": {"type": "none"},
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def command_like():
    fields = st.sampled_from(
        ["op", "target", "source", "data", "format", "type", "alert", "options", "choices"]
    )
    values = json_values | st.sampled_from(
        ["Get", "Add", "Replace", "Delete", "Exec", "Copy", "Alert", "./A", "A/B?list=TNDS",
         "b64", "node", 1100, 1103, ["x"]]
    )
    return st.dictionaries(fields, values, max_size=6)


class Raises:
    def assertInvalid(self, code, message, f, *args, **kw):
        with self.assertRaises(ValidationError) as caught:
            f(*args, **kw)
        self.assertEqual(caught.exception.code, code)
        self.assertIn(message, caught.exception.message)


class DeviceTests(Raises, SynchronousTestCase):
    def test_minimal(self):
        account = validate_device(ACCOUNT)
        self.assertEqual(account, {
            "server_id": "dms.example.com",
            "client_auth": {"type": "hmac", "name": "dmclient01", "secret": "a"},
            "server_auth": {"type": "none", "name": None, "secret": None},
            "msisdn": None, "sip_uri": None, "imsi": None,
        })

    def test_full(self):
        account = validate_device(dict(
            ACCOUNT,
            client_auth={"type": "Basic", "name": "n", "secret": "s", "nonce": "AAEC"},
            msisdn="447700900123", sip_uri="sips:dev@example.com", imsi="001010123456789",
        ))
        self.assertEqual(account["client_auth"]["type"], "basic")
        self.assertEqual(account["client_auth"]["nonce"], "AAEC")
        self.assertEqual(account["imsi"], "001010123456789")

    def test_empty_nonce(self):
        auth = {"type": "md5", "name": "n", "secret": "s", "nonce": ""}
        self.assertEqual(validate_device(dict(ACCOUNT, client_auth=auth))["client_auth"]["nonce"], "")

    def test_rules(self):
        cases = [
            ({"server_id": None}, "server_id is required"),
            ({"server_id": 7}, "server_id must be a string"),
            ({"server_id": ""}, "server_id must not be empty"),
            ({"server_id": "x" * 256}, "server_id is longer than 255"),
            ({"server_id": "a\nb"}, "server_id must not contain control characters"),
            ({"client_auth": "md5"}, "client_auth must be a JSON object"),
            ({"client_auth": {"type": "digest"}}, "client_auth.type must be one of md5, basic"),
            ({"server_auth": {"type": "basic", "secret": "s"}},
             "server_auth.name is required for type basic"),
            ({"client_auth": {"type": "md5", "name": "n", "secret": ""}},
             "client_auth.secret must not be empty"),
            ({"client_auth": {"type": "md5", "name": "n", "secret": "s", "nonce": "a b"}},
             "client_auth.nonce is not valid base64"),
            ({"client_auth": {"type": "md5", "name": "n", "secret": "s", "nonce": 5}},
             "client_auth.nonce must be a base64 string"),
            ({"client_auth": {"type": "md5", "name": "n", "secret": "s", "nonce": "A" * 344}},
             "client_auth.nonce is longer than 255 bytes"),
            ({"client_auth": {"type": "none", "pin": "1"}}, "client_auth: unknown field 'pin'"),
            ({"msisdn": "+44-77"}, "msisdn must be digits"),
            ({"msisdn": "+" + "1" * 16}, "msisdn must be digits"),
            ({"msisdn": 447700}, "msisdn must be digits"),
            ({"sip_uri": "tel:+44"}, "sip_uri must be a sip: or sips: URI"),
            ({"sip_uri": "sip:"}, "sip_uri must be a sip: or sips: URI"),
            ({"sip_uri": "sip:a b"}, "sip_uri must be a sip: or sips: URI"),
            ({"imsi": "00101"}, "imsi must be 6 to 15 digits"),
            ({"msidsn": "+44"}, "unknown field 'msidsn'"),
        ]
        for change, message in cases:
            self.assertInvalid("invalid_device", message, validate_device, {**ACCOUNT, **change})

    def test_not_an_object(self):
        self.assertInvalid("invalid_device", "body must be a JSON object", validate_device, [])

    @given(json_values)
    def test_any_json_is_accepted_or_refused_cleanly(self, value):
        try:
            validate_device(value)
        except ValidationError:
            pass


class UriTests(Raises, SynchronousTestCase):
    def test_valid(self):
        for uri in (".", "./DevDetail/SwV", "DevDetail/SwV", "./A?list=Struct",
                    "./A/D?list=StructData", "./Vendor?list=TNDS+Value+ACL",
                    ".?list=TNDS-Format", "./DMAcc/x?prop=ACL", "./a.b/c%20d", "x" * 1024):
            self.assertEqual(validate_dm_uri(uri, "t"), uri)

    def test_invalid(self):
        cases = [
            ("", "must not be empty"),
            ("x" * 1025, "longer than 1024"),
            ("/A", "must be relative"),
            ("./", "has no node name"),
            ("./A/", "must not contain empty"),
            ("A//B", "must not contain empty"),
            ("./A/../B", "'..' segments"),
            ("../A", "'..' segments"),
            ("./A/./B", "'..' segments"),
            ("./A B", "must not contain spaces"),
            ("./A?list=Tree", "unsupported query"),
            ("./A?list=TNDS+Value-ACL", "unsupported query"),
            ("./A?prop=", "unsupported query"),
            ("./A?x=1", "unsupported query"),
            (7, "must be a string"),
        ]
        for uri, message in cases:
            self.assertInvalid("invalid_job", message, validate_dm_uri, uri, "t")

    def test_query_depends_on_op(self):
        self.assertEqual(validate_dm_uri("./A?prop=Title", "t", op="Replace"), "./A?prop=Title")
        self.assertInvalid("invalid_job", "?list= is not valid with Replace",
                           validate_dm_uri, "./A?list=Struct", "t", op="Replace")
        self.assertInvalid("invalid_job", "?prop= is not valid with Delete",
                           validate_dm_uri, "./A?prop=ACL", "t", op="Delete")


class CommandTests(Raises, SynchronousTestCase):
    def test_ops(self):
        cases = [
            {"op": "Get", "target": "./A"},
            {"op": "Delete", "target": "./A"},
            {"op": "Add", "target": "./A", "format": "node"},
            {"op": "Add", "target": "./A/B", "data": "1", "format": "int", "type": "text/plain"},
            {"op": "Replace", "target": "./A", "data": ""},
            {"op": "Exec", "target": "./FUMO/x/Update", "data": "go"},
            {"op": "Copy", "target": "./A", "source": "./B"},
            {"op": "Alert", "alert": 1100, "data": "Hello", "options": "MINDT=10&MAXDT=60"},
            {"op": "Alert", "alert": 1101},
            {"op": "Alert", "alert": 1104, "choices": ["a", "b"]},
        ]
        for command in cases:
            self.assertEqual(validate_command(command, "c"), command)

    def test_data_may_span_lines(self):
        # Node values (an XML document, a multi-line config) and alert
        # texts keep their tabs and line breaks; XML and WBXML carry them.
        cases = [
            {"op": "Replace", "target": "./Vendor/Cfg", "data": "<a>\n\t<b/>\r\n</a>",
             "format": "xml"},
            {"op": "Add", "target": "./A", "data": "line 1\nline 2", "format": "chr"},
            {"op": "Exec", "target": "./A/Go", "data": "a\tb"},
            {"op": "Alert", "alert": 1101, "data": "Install now?\nIt takes 5 minutes."},
        ]
        for command in cases:
            self.assertEqual(validate_command(command, "c"), command)
        for data in ("a\x00b", "a\x1bb", "a\x0cb", "a\x7fb"):
            self.assertInvalid("invalid_job", "c.data must not contain control characters",
                               validate_command,
                               {"op": "Replace", "target": "./A", "data": data}, "c")
            self.assertInvalid("invalid_job", "c.data must not contain control characters",
                               validate_command, {"op": "Alert", "alert": 1100, "data": data}, "c")

    def test_op_case_and_nulls(self):
        self.assertEqual(
            validate_command({"op": "exec", "target": "./A", "data": None}, "c"),
            {"op": "Exec", "target": "./A"},
        )

    def test_unknown_op(self):
        for op in ("Sync", "", 7, ["Get"]):
            self.assertInvalid("unknown_op", "c.op: unknown op", validate_command,
                               {"op": op, "target": "./A"}, "c")
        self.assertInvalid("invalid_job", "c.op is required", validate_command, {"target": "./A"}, "c")

    def test_rules(self):
        cases = [
            ({"op": "Get"}, "c.target is required for Get"),
            ({"op": "Get", "target": "./A", "data": "x"}, "field 'data' is not valid with Get"),
            ({"op": "Copy", "target": "./A"}, "c.source is required for Copy"),
            ({"op": "Copy", "target": "./A", "source": "./B?list=Struct"},
             "?list= is not valid with Copy"),
            ({"op": "Add", "target": "./A", "format": "png"}, "c.format must be one of b64"),
            ({"op": "Add", "target": "./A", "format": "b64", "data": "!!"},
             "c.data is not valid base64"),
            ({"op": "Replace", "target": "./A", "format": "node"}, "format node is for Add"),
            ({"op": "Add", "target": "./A", "format": "node", "data": "x"}, "format node is for Add"),
            ({"op": "Add", "target": "./A", "data": 5}, "c.data must be a string"),
            ({"op": "Add", "target": "./A", "type": ""}, "c.type must not be empty"),
            ({"op": "Alert", "target": "./A", "alert": 1100}, "field 'target' is not valid"),
            ({"op": "Alert"}, "c.alert is required for Alert"),
            ({"op": "Alert", "alert": 1226}, "c.alert must be 1100"),
            ({"op": "Alert", "alert": True}, "c.alert must be 1100"),
            ({"op": "Alert", "alert": "1100"}, "c.alert must be 1100"),
            ({"op": "Alert", "alert": 1103}, "c.choices must be a non-empty list for alert 1103"),
            ({"op": "Alert", "alert": 1103, "choices": []}, "c.choices must be a non-empty list"),
            ({"op": "Alert", "alert": 1103, "choices": [1]}, "c.choices[0] must be a string"),
            ({"op": "Alert", "alert": 1103, "choices": ["a"] * 101}, "more than 100 entries"),
            ({"op": "Alert", "alert": 1102, "choices": ["a"]}, "only valid with alert 1103 or 1104"),
            ({"op": "Alert", "alert": 1100, "options": "MINDT"}, "name=value pairs"),
            ("Get", "c must be a JSON object"),
        ]
        for command, message in cases:
            self.assertInvalid("invalid_job", message, validate_command, command, "c")


class JobTests(Raises, SynchronousTestCase):
    def test_atomic_refuses_get_and_exec(self):
        for op in ("Get", "Exec"):
            job = {"commands": [{"op": "Delete", "target": "./A"}, {"op": op, "target": "./B"}],
                   "atomic": True}
            self.assertInvalid("invalid_job",
                               f"commands[1]: {op} is not allowed inside an atomic job",
                               validate_job, job)
        job = {"commands": [{"op": "Add", "target": "./A", "format": "node"},
                            {"op": "Alert", "alert": 1101, "data": "ok?"}], "atomic": True}
        self.assertTrue(validate_job(job)["atomic"])

    def test_rules(self):
        get = [{"op": "Get", "target": "./A"}]
        cases = [
            ({}, "commands must be a non-empty list"),
            ({"commands": {}}, "commands must be a non-empty list"),
            ({"commands": get, "atomic": "yes"}, "atomic must be true or false"),
            ({"commands": get, "notify": "SMS"}, "notify must be one of auto, sms, sip, none"),
            ({"commands": get, "ui_mode": True}, "ui_mode must be an integer from 0 to 3"),
            ({"commands": get, "ui_mode": -1}, "ui_mode must be an integer from 0 to 3"),
            ({"commands": get, "priority": 1}, "unknown field 'priority'"),
            ({"commands": get * 3}, "commands has more than 2 entries"),
            ({"commands": [{"op": "Get", "target": "./A"}, {"op": "Get"}]},
             "commands[1].target is required"),
        ]
        for job, message in cases:
            self.assertInvalid("invalid_job", message, validate_job, job, max_commands=2)

    @settings(max_examples=300)
    @given(st.fixed_dictionaries(
        {"commands": st.lists(command_like(), max_size=3)},
        optional={"atomic": json_values, "notify": json_values, "ui_mode": json_values},
    ))
    def test_any_job_is_accepted_or_refused_cleanly(self, value):
        try:
            job = validate_job(value)
        except ValidationError as e:
            self.assertIn(e.code, ("invalid_job", "unknown_op"))
        else:
            json.dumps(job)


class ParameterTests(Raises, SynchronousTestCase):
    def test_device_id(self):
        self.assertEqual(parse_device_id(b"IMEI:350000000000001"), "IMEI:350000000000001")
        self.assertEqual(parse_device_id(b"MEID:A/1"), "MEID:A/1")
        for raw in (b"", b"a b", b"x" * 129, "é".encode(), b"\x00", b"a\x7f"):
            self.assertInvalid("invalid_device_id", "device id", parse_device_id, raw)

    def test_job_id(self):
        self.assertEqual(parse_job_id(b"0f6c-4.1_x:y~"), "0f6c-4.1_x:y~")
        for raw in (b"", b"a b", b"a/b", b"x" * 129, "é".encode()):
            self.assertIsNone(parse_job_id(raw))

    def test_query_value(self):
        self.assertIsNone(query_value({}, "after"))
        self.assertEqual(query_value({b"after": [b"7"]}, "after"), "7")
        self.assertInvalid("invalid_parameter", "after given more than once",
                           query_value, {b"after": [b"1", b"2"]}, "after")
        self.assertInvalid("invalid_parameter", "after is not UTF-8",
                           query_value, {b"after": [b"\xff"]}, "after")

    def test_int(self):
        self.assertEqual(parse_int_param(None, "n", 5, 1, 9), 5)
        self.assertEqual(parse_int_param("9", "n", 5, 1, 9), 9)
        for value in ("0", "10", "-1", "1.0", " 1", "", "x" * 20):
            self.assertInvalid("invalid_parameter", "n must be an integer from 1 to 9",
                               parse_int_param, value, "n", 5, 1, 9)

    def test_wait(self):
        self.assertEqual(parse_wait_param(None, 60), 0.0)
        self.assertEqual(parse_wait_param("2.5", 60), 2.5)
        self.assertEqual(parse_wait_param("600", 60), 60.0)
        for value in ("-1", "1e3", "inf", "nan", ""):
            self.assertInvalid("invalid_parameter", "wait", parse_wait_param, value, 60)


class JsonTests(Raises, SynchronousTestCase):
    def test_parse(self):
        self.assertEqual(parse_json(b'{"a": [1, "\xc3\xa9"]}'), {"a": [1, "é"]})
        self.assertInvalid("bad_json", "line 1 column 2", parse_json, b"{")
        self.assertInvalid("bad_json", "NaN is not valid JSON", parse_json, b"[NaN]")
        self.assertInvalid("bad_json", "Infinity is not valid JSON", parse_json, b"[-Infinity]")
        self.assertInvalid("bad_json", "body is not UTF-8 (byte 1)", parse_json, b'"\xff"')
        self.assertInvalid("bad_json", "nested too deeply", parse_json, b"[" * 100000)

    @given(st.binary(max_size=200))
    def test_random_bytes(self, data):
        try:
            parse_json(data)
        except ValidationError as e:
            self.assertEqual(e.code, "bad_json")


def test_text_xml_cannot_carry_is_refused_anywhere_in_a_body():
    import pytest

    from dmgateway.api.validation import ValidationError, parse_json

    for body, where in ((b'{"a": "x\\u0000"}', "/a"), (b'{"a": [1, {"b": "\\ud800"}]}', "/a/1/b"),
                        (b'{"\\u0007": 1}', "(a key)"), (b'"\\uffff"', "body")):
        with pytest.raises(ValidationError) as caught:
            parse_json(body)
        assert caught.value.code == "bad_json"
        assert where in caught.value.message
    assert parse_json(b'{"a": "tab\\there\\r\\n \\ud83d\\ude00"}') == {"a": "tab\there\r\n \U0001F600"}
