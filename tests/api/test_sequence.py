"""A Sequence in a job (issue 11): validation of ``{"op": "Sequence", "commands": [...]}``."""

import pytest

from dmgateway.api.validation import MAX_COMMANDS, ValidationError, validate_job


def job(*commands, **extra):
    return dict({"commands": list(commands)}, **extra)


SEQ = {"op": "sequence", "commands": [
    {"op": "Replace", "target": "./Vendor/A", "data": "1"},
    {"op": "get", "target": "./Vendor/A"},
    {"op": "Alert", "alert": 1100, "data": "done"},
]}


def test_a_sequence_is_kept_with_its_commands_validated():
    checked = validate_job(job({"op": "Get", "target": "./DevInfo/Man"}, SEQ))
    sequence = checked["commands"][1]
    assert sequence["op"] == "Sequence"
    assert [c["op"] for c in sequence["commands"]] == ["Replace", "Get", "Alert"]


@pytest.mark.parametrize("body, words", [
    (job({"op": "Sequence"}), "commands[0].commands is required"),
    (job({"op": "Sequence", "commands": []}), "non-empty list"),
    (job({"op": "Sequence", "commands": "x"}), "non-empty list"),
    (job({"op": "Sequence", "commands": [{"op": "Sequence", "commands": [
        {"op": "Get", "target": "./A"}]}]}), "cannot hold a Sequence"),
    (job({"op": "Sequence", "commands": [{"op": "Get"}]}), "commands[0].commands[0].target"),
    (job({"op": "Sequence", "commands": [{"op": "Get", "target": "./A"}], "target": "./B"}),
     "field 'target' is not valid with Sequence"),
    (job(SEQ, atomic=True), "Sequence is not allowed inside an atomic job"),
])
def test_bad_sequences_are_refused_naming_the_field(body, words):
    with pytest.raises(ValidationError) as caught:
        validate_job(body)
    assert caught.value.code == "invalid_job"
    assert words in caught.value.message


def test_sequence_contents_count_towards_the_command_limit():
    inner = [{"op": "Get", "target": "./A%d" % n} for n in range(MAX_COMMANDS)]
    with pytest.raises(ValidationError) as caught:
        validate_job(job({"op": "Get", "target": "./B"}, {"op": "Sequence", "commands": inner}))
    assert "Sequence contents count" in caught.value.message
    assert validate_job(job({"op": "Sequence", "commands": inner}))


def test_a_secret_inside_a_sequence_is_not_shown_in_the_job_view():
    from types import SimpleNamespace

    from dmgateway.api.views import job_view

    secret = "./DMAcc/x/AppAuth/1/AAuthSecret"
    checked = validate_job(job({"op": "Sequence", "commands": [
        {"op": "Replace", "target": secret, "data": "hunter2"},
        {"op": "Replace", "target": "./Vendor/A", "data": "1"},
    ]}))
    stored = SimpleNamespace(job_id="j1", device_id="d", state="queued", commands=checked["commands"],
                             atomic=False, notify="none", ui_mode=0, results=[], created=0, updated=0,
                             error=None)
    view = job_view(stored, ())
    inner = view["commands"][0]["commands"]
    assert inner[0]["data"] == "(secret)"
    assert inner[1]["data"] == "1"
    assert "hunter2" not in repr(view)
    assert checked["commands"][0]["commands"][0]["data"] == "hunter2"  # the job itself keeps it
