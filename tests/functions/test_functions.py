"""The pure device-function layer: operations, result codes, completions."""

import pytest

from dmgateway.dm.commands import build_job_commands
from dmgateway.functions import (FunctionError, build_operation, correlator_for, offered_wipe_list, outcome_for,
                                 parse_completion, parse_inventory, wipe_commands)
from dmgateway.functions import mo
from dmgateway.functions.alerts import normalise_source


def test_fumo_download_and_update_is_replace_then_exec_with_correlator():
    op = build_operation("fumo", None, {"package_url": "https://gw.test/fw/1?tok=a&dev=b"}, "j7f3a21")
    assert op.action == "download_and_update"
    assert op.commands == [
        {"op": "Replace", "target": "./FUMO/fw1/DownloadAndUpdate/PkgURL",
         "data": "https://gw.test/fw/1?tok=a&dev=b", "format": "chr", "type": "text/plain"},
        {"op": "Exec", "target": "./FUMO/fw1/DownloadAndUpdate", "correlator": "j7f3a21"},
    ]
    assert op.alert_type == "org.openmobilealliance.dm.firmwareupdate.downloadandupdate"
    assert [c["target"] for c in op.readback] == ["./FUMO/fw1/State", "./DevDetail/FwV"]
    built = build_job_commands(op.commands, False)
    assert built[1].correlator == "j7f3a21"


def test_fumo_update_needs_no_url_and_other_root():
    op = build_operation("fumo", "update", {"root": "./FwUpdate/x"}, "j1")
    assert op.commands == [{"op": "Exec", "target": "./FwUpdate/x/Update", "correlator": "j1"}]
    assert op.alert_type == mo.FUMO_ALERT_UPDATE


def test_scomo_install_adds_download_node_then_exec():
    op = build_operation("scomo", "install", {"package_url": "http://gw.test/p", "component": "app1"}, "j9")
    assert [c["op"] for c in op.commands] == ["Add", "Add", "Add", "Exec"]
    assert op.commands[0] == {"op": "Add", "target": "./SCOMO/Download/app1", "format": "node"}
    assert op.exec_target == "./SCOMO/Download/app1/Operations/DownloadInstall"
    assert op.readback[1]["target"] == "./SCOMO/Inventory/Deployed/app1/State"
    build_job_commands(op.commands, False)
    remove = build_operation("scomo", "remove", {"component": "app1"}, "j9")
    assert remove.commands == [
        {"op": "Exec", "target": "./SCOMO/Inventory/Deployed/app1/Operations/Remove", "correlator": "j9"}
    ]


def test_lawmo_wipe_needs_confirmation_and_reads_the_wipe_list_first():
    with pytest.raises(FunctionError, match="confirm"):
        build_operation("lawmo", "wipe", {"wipe_list": ["sd"]}, "j2")
    with pytest.raises(FunctionError, match="confirm"):
        build_operation("lawmo", "factory_reset", {"confirm": "yes"}, "j2")
    op = build_operation("lawmo", "wipe", {"wipe_list": ["sd", "contacts"], "confirm": True}, "j2")
    assert op.commands == [{"op": "Get", "target": "./LAWMO/AvailableWipeList"}]
    assert op.exec_target == "./LAWMO/Operations/Wipe"
    assert op.wipe_list == ["sd", "contacts"]
    assert build_operation("lawmo", "wipe", {"confirm": True}, "j2").wipe_list is None
    build_job_commands(op.commands, False)
    lock = build_operation("lawmo", "fully_lock", {}, "j3")
    assert lock.commands == [{"op": "Exec", "target": "./LAWMO/Operations/FullyLock", "correlator": "j3"}]


def test_wipe_commands_from_the_offered_list():
    commands = wipe_commands("./LAWMO", "./LAWMO/Operations/Wipe", "j2", ["sd"], ["contacts", "sd"])
    assert commands == [
        {"op": "Replace", "target": "./LAWMO/AvailableWipeList/sd/ToBeWiped", "data": "true", "format": "bool"},
        {"op": "Exec", "target": "./LAWMO/Operations/Wipe", "correlator": "j2"},
    ]
    build_job_commands(commands, False)
    everything = wipe_commands("./LAWMO", "./LAWMO/Operations/Wipe", "j2", None, ["contacts", "sd"])
    assert [c["target"] for c in everything[:-1]] == ["./LAWMO/AvailableWipeList/contacts/ToBeWiped",
                                                      "./LAWMO/AvailableWipeList/sd/ToBeWiped"]
    with pytest.raises(FunctionError, match="photos"):
        wipe_commands("./LAWMO", "./LAWMO/Operations/Wipe", "j2", ["sd", "photos"], ["contacts", "sd"])
    with pytest.raises(FunctionError, match="nothing to wipe"):
        wipe_commands("./LAWMO", "./LAWMO/Operations/Wipe", "j2", None, [])


@pytest.mark.parametrize("data, names", [("contacts/sd", ["contacts", "sd"]), ("", []), (" sd\n", ["sd"])])
def test_offered_wipe_list(data, names):
    assert offered_wipe_list(data) == names


@pytest.mark.parametrize("data", [None, "../x", "a/<b>", "/".join("n%d" % i for i in range(300))])
def test_offered_wipe_list_refuses_what_is_no_list(data):
    with pytest.raises(ValueError):
        offered_wipe_list(data)


def test_scomo_operations_read_the_whole_inventory_back():
    op = build_operation("scomo", "activate", {"component": "app1"}, "j9")
    assert {"op": "Get", "target": "./SCOMO/Inventory/Deployed?list=StructData"} in op.readback
    assert {"op": "Get", "target": "./SCOMO/Inventory/Delivered?list=StructData"} in op.readback
    inventory = build_operation("scomo", "inventory", {}, "j9")
    assert [c["op"] for c in inventory.commands] == ["Get", "Get"]
    build_job_commands(inventory.commands, False)


def test_parse_inventory():
    answer = {"data": None, "items": [
        {"source": "./SCOMO/Inventory/Deployed", "data": "a1/a2"},
        {"source": "./SCOMO/Inventory/Deployed/a1", "data": None},
        {"source": "./SCOMO/Inventory/Deployed/a1/ID", "data": "com.example.a1"},
        {"source": "./SCOMO/Inventory/Deployed/a1/Version", "data": " 2.0 "},
        {"source": "./SCOMO/Inventory/Deployed/a1/State", "data": "20"},
        {"source": "./SCOMO/Inventory/Deployed/a1/Ext/Secret", "data": "x"},
        {"source": "./SCOMO/Inventory/Deployed/a2/State", "data": "odd"},
        {"source": "./Other/a3/Version", "data": "1"},
        {"source": "./SCOMO/Inventory/Deployed/../x/Version", "data": "1"},
        "junk",
    ]}
    part, entries = parse_inventory("./SCOMO/Inventory/Deployed?list=StructData", answer)
    assert part == "deployed"
    assert entries == {"a1": {"id": "com.example.a1", "version": "2.0", "state": 20}, "a2": {"state": "odd"}}
    assert parse_inventory("./SCOMO/Inventory/Deployed/a1/State", answer) is None
    assert parse_inventory("./SCOMO/Inventory/Delivered?list=StructData", {"data": ""}) == ("delivered", {})
    many = {"items": [{"source": "./SCOMO/Inventory/Deployed/c%d/ID" % i, "data": "x"} for i in range(1000)]}
    assert len(parse_inventory("./SCOMO/Inventory/Deployed?list=Struct", many)[1]) == 256


@pytest.mark.parametrize(
    "function, action, params, message",
    [
        ("dance", None, {}, "function"),
        ("fumo", "explode", {}, "action"),
        ("fumo", None, {}, "package_url"),
        ("fumo", None, {"package_url": "ftp://x"}, "http"),
        ("fumo", None, {"package_url": "http://x/a b"}, "spaces"),
        ("fumo", None, {"package_url": "http://x", "root": "../etc"}, "root"),
        ("scomo", "install", {"package_url": "http://x", "component": "a/b"}, "node name"),
        ("lawmo", "wipe", {"confirm": True, "wipe_list": []}, "wipe_list"),
        ("lawmo", "wipe", {"confirm": True, "wipe_list": ["../x"]}, "node names"),
        ("lawmo", "wipe", {"confirm": True, "wipe_list": "sd"}, "wipe_list"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(function, action, params, message):
    with pytest.raises(FunctionError, match=message):
        build_operation(function, action, params, "j1")


def test_correlator_is_short_alphanumeric():
    assert correlator_for("3f2a-9b") == "j3f2a9b"
    assert len(correlator_for("a" * 64)) == 21
    with pytest.raises(FunctionError):
        correlator_for("--")


@pytest.mark.parametrize(
    "function, code, success, meaning",
    [
        ("fumo", 200, True, "successful"),
        ("fumo", 402, False, "corrupted firmware update package"),
        ("fumo", 260, True, "successful (vendor-specified)"),
        ("fumo", 460, False, "client error (vendor-specified)"),
        ("fumo", 999, False, "unknown result code"),
        ("scomo", 1200, True, "successful"),
        ("scomo", 1405, False, "install failed"),
        ("lawmo", 1201, True, "wipe of data succeeded"),
        ("lawmo", 1404, False, "unlock failed"),
    ],
)
def test_result_codes(function, code, success, meaning):
    outcome = outcome_for(function, code)
    assert (outcome.success, outcome.meaning) == (success, meaning)


def test_operator_table_overrides_vendor_codes():
    assert outcome_for("fumo", 403, {403: (True, "deferred")}).success is True


def _payload(**kw):
    base = {"alert": 1226, "source": "./FUMO/fw1", "target": None, "meta_type":
            "org.openmobilealliance.dm.firmwareupdate.downloadandupdate", "format": "int", "mark": None,
            "data": "200", "correlator": "j7f3a21"}
    base.update(kw)
    return base


def test_fumo_completion_from_the_spec_example():
    done = parse_completion(_payload())
    assert (done.function, done.correlator, done.code, done.source) == ("fumo", "j7f3a21", 200, "./FUMO/fw1")


def test_completion_tolerates_prefix_exec_node_source_and_any_format():
    done = parse_completion(_payload(meta_type="Reversed-Domain-Name: " + mo.FUMO_ALERT_UPDATE,
                                     source="./FUMO/fw1/Update", format="chr", data=" 402 "))
    assert (done.alert_type, done.source, done.code) == (mo.FUMO_ALERT_UPDATE, "./FUMO/fw1", 402)


def test_scomo_completion_reads_the_result_fragment_or_a_bare_code():
    done = parse_completion(_payload(meta_type=mo.SCOMO_ALERT, correlator="j9c01b7",
                                     data="<ResultCode>1200</ResultCode><Identifier>com.example.app1</Identifier>"))
    assert (done.function, done.code, done.identifier) == ("scomo", 1200, "com.example.app1")
    assert parse_completion(_payload(meta_type=mo.SCOMO_ALERT, data="1405")).code == 1405


def test_hostile_or_foreign_alerts_are_not_completions():
    assert parse_completion(_payload(meta_type="com.example.other")) is None
    assert parse_completion(_payload(alert=1224)) is None
    assert parse_completion(_payload(meta_type=None)) is None
    assert parse_completion("junk") is None
    bad = parse_completion(_payload(data="<x>" * 1000))
    assert bad.code is None
    assert parse_completion(_payload(data="9" * 50)).code is None


def test_device_request_is_a_request_without_correlator():
    req = parse_completion(_payload(meta_type=mo.FUMO_ALERT_USER_REQUEST, correlator=None, data=""))
    assert req.request and req.function is None


def test_normalise_source():
    assert normalise_source("./FUMO/fw1/DownloadAndUpdate") == "./FUMO/fw1"
    assert normalise_source(None) is None
    # a relative URI without "./", a trailing slash: the same node
    assert normalise_source("FUMO/fw1/DownloadAndUpdate") == "./FUMO/fw1"
    assert normalise_source("./FUMO/fw1/") == "./FUMO/fw1"
    assert normalise_source("  ") is None


# -- rollout ---------------------------------------------------------------------

from dmgateway.functions.rollout import (  # noqa: E402
    PolicyError, check_policy, in_window, starts_allowed, wave_of, wave_verdict,
)


def test_policy_defaults_and_checks():
    policy = check_policy({"waves": [1, 10, 100], "rate_per_minute": 600, "concurrency": 50,
                           "pause_failure_ratio": 0.03, "window": {"start": "22:00", "end": "04:00"}})
    assert policy.waves == (1.0, 10.0, 100.0) and policy.window == (1320, 240)
    assert check_policy(policy.as_json()) == policy
    for bad in ({"waves": [10, 5, 100]}, {"waves": [50]}, {"waves": []}, {"rate_per_minute": 0},
                {"concurrency": True}, {"pause_failure_ratio": 2}, {"window": {"start": "25:00", "end": "01:00"}},
                {"window": {"start": "01:00", "end": "01:00"}}, {"other": 1}, [1]):
        with pytest.raises(PolicyError):
            check_policy(bad)


def test_waves_split_the_selection():
    waves = (1.0, 10.0, 100.0)
    counts = [0, 0, 0]
    for position in range(500):
        counts[wave_of(position, 500, waves)] += 1
    assert counts == [5, 45, 450]
    assert [wave_of(p, 3, waves) for p in range(3)] == [0, 2, 2]  # wave 1 is empty


def test_window_wraps_past_midnight():
    day = 86400 * 19000
    assert in_window(day + 23 * 3600, (1320, 240))
    assert in_window(day + 3 * 3600, (1320, 240))
    assert not in_window(day + 12 * 3600, (1320, 240))
    assert in_window(day + 12 * 3600, (600, 900))
    assert in_window(day, None)


def test_rate_limit_and_concurrency():
    # 60/min: one a second; after 10 s idle with burst 5, five start
    assert starts_allowed(100.0, 100.0, 60, 0, 10, 5) == (1, 101.0)
    count, following = starts_allowed(110.0, 100.0, 60, 0, 10, 5)
    assert (count, following) == (5, 111.0)
    assert starts_allowed(99.0, 100.0, 60, 0, 10, 5)[0] == 0
    assert starts_allowed(110.0, 100.0, 60, 10, 10, 5)[0] == 0  # cap reached
    assert starts_allowed(110.0, 100.0, 60, 8, 10, 5)[0] == 2


def test_wave_verdict():
    assert wave_verdict(100, 6, 0.05) == "pause"
    assert wave_verdict(100, 5, 0.05) == "next"
    assert wave_verdict(0, 0, 0.0) == "next"


def test_operator_code_rules():
    from dmgateway.functions.mo import code_tables, parse_code_rule

    rules = [parse_code_rule("fumo:403=fail:deferred_by_user"), parse_code_rule("lawmo:1250-1252=ok")]
    tables = code_tables(rules)
    assert tables["fumo"][403] == (False, "deferred by user")
    assert sorted(tables["lawmo"]) == [1250, 1251, 1252]
    assert outcome_for("fumo", 403, tables["fumo"]).meaning == "deferred by user"
    for bad in ("fumo:403", "x:1=ok", "fumo:9-1=ok", "fumo:1-5000=ok", "fumo:403=maybe", ""):
        with pytest.raises(ValueError):
            parse_code_rule(bad)


def test_lawmo_operation_node_can_be_named():
    op = build_operation("lawmo", "unlock", {"node": "Unlock"}, "j4")
    assert op.commands == [{"op": "Exec", "target": "./LAWMO/Operations/Unlock", "correlator": "j4"}]
    with pytest.raises(FunctionError):
        build_operation("lawmo", "unlock", {"node": "../x"}, "j4")
