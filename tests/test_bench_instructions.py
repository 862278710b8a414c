"""bench/instructions.py's reading of a callgrind dump (valgrind itself is not run here)."""

import pytest

from bench.instructions import MISSES, busy, callgrind_events, callgrind_totals, core_l2_bytes

# the head and tail of a dump as `callgrind_control --dump` writes them (valgrind 3.19), cut short
DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 5308
cmd:  /work/.venv/bin/python -c from\\ twisted.scripts.twistd\\ import\\ run;\\ run()
part: 1

desc: I1 cache:
desc: Trigger: dump gateway

positions: line
events: Ir
summary: 25569142

ob=(1) /root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0
fl=(1) ceval.c
fn=(1) _PyEval_EvalFrameDefault
4213 1200

totals: 25569142
"""


def test_the_totals_line_gives_the_instructions():
    assert callgrind_totals(DUMP) == 25569142


def test_the_summary_line_stands_in_for_a_missing_totals_line():
    assert callgrind_totals(DUMP.replace("totals: 25569142\n", "")) == 25569142


def test_ir_is_read_from_its_column_when_more_events_were_collected():
    dump = DUMP.replace("events: Ir", "events: Dr Ir Dw").replace("totals: 25569142", "totals: 7 25569142 9")
    assert callgrind_totals(dump) == 25569142


@pytest.mark.parametrize("text", ["", "events: Dr\ntotals: 5\n", "events: Ir\n", "cmd: totals\n"])
def test_anything_but_a_dump_with_ir_totals_is_refused(text):
    with pytest.raises(ValueError):
        callgrind_totals(text)


def test_a_cache_simulation_s_events_are_read_by_name():
    # the events line callgrind writes with --cache-sim=yes, and its totals
    dump = DUMP.replace("events: Ir", "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw").replace(
        "totals: 25569142", "totals: 25569142 7 9 100 200 30 4 50 6")
    events = callgrind_events(dump)
    assert events == {"Ir": 25569142, "Dr": 7, "Dw": 9, "I1mr": 100, "D1mr": 200, "D1mw": 30,
                      "ILmr": 4, "DLmr": 50, "DLmw": 6}
    assert [sum(events[event] for event in names) for _, names in MISSES] == [330, 60]


def test_the_idle_rate_is_taken_out_of_every_event():
    assert busy({"Ir": 1000, "ILmr": 50}, 2.0, {"Ir": 100.0, "ILmr": 5.0}) == {"Ir": 800.0, "ILmr": 40.0}


def test_the_l2_size_is_read_from_sysfs_and_defaults_to_512_kib(tmp_path):
    for index, (level, size) in enumerate([("1", "32K"), ("2", "1024K"), ("3", "32768K")]):
        (tmp_path / ("index%d" % index)).mkdir()
        (tmp_path / ("index%d" % index) / "level").write_text(level + "\n")
        (tmp_path / ("index%d" % index) / "size").write_text(size + "\n")
    assert core_l2_bytes(str(tmp_path)) == 1024 * 1024
    assert core_l2_bytes(str(tmp_path / "none")) == 512 * 1024
