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
