"""UI alert options and the built-in policies."""

from dmgateway.client import ui


def test_parse_options():
    assert ui.parse_options("MINDT=10&MAXDT=30") == {"MINDT": "10", "MAXDT": "30"}
    assert ui.parse_options("maxdt=5&DR=Hello+World%21&X") == {"MAXDT": "5", "DR": "Hello World!",
                                                             "X": ""}
    assert ui.parse_options("DR=&&=7") == {"DR": ""}
    assert ui.parse_options("") == {} and ui.parse_options(None) == {}


def test_default_policy_follows_dr():
    policy = ui.default_policy
    assert policy(ui.DISPLAY, {}, "hi", []) == (200, [])
    assert policy(ui.CONFIRM, {}, "ok?", []) == (200, [])
    assert policy(ui.CONFIRM, {"DR": "1"}, "ok?", []) == (200, [])
    assert policy(ui.CONFIRM, {"DR": "0"}, "ok?", []) == (304, [])
    assert policy(ui.TEXT_INPUT, {"DR": "abc"}, "name?", []) == (200, ["abc"])
    assert policy(ui.TEXT_INPUT, {}, "name?", []) == (200, [""])
    assert policy(ui.SINGLE_CHOICE, {}, "pick", ["a", "b"]) == (200, ["1"])
    assert policy(ui.SINGLE_CHOICE, {"DR": "2"}, "pick", ["a", "b"]) == (200, ["2"])
    assert policy(ui.MULTIPLE_CHOICE, {"DR": "2-3"}, "pick", ["a", "b", "c"]) == (200, ["2", "3"])
    assert policy(ui.MULTIPLE_CHOICE, {}, "pick", ["a"]) == (200, [])


def test_scripted_policy_records_and_falls_back():
    policy = ui.scripted_policy([(214, [])])
    assert policy(ui.CONFIRM, {}, "first", []) == (214, [])
    assert policy(ui.CONFIRM, {"DR": "0"}, "second", []) == (304, [])
    assert policy.calls == [(ui.CONFIRM, {}, "first", []), (ui.CONFIRM, {"DR": "0"}, "second", [])]
