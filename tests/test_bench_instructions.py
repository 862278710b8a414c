"""bench/instructions.py's reading of a callgrind dump (valgrind itself is not run here)."""

import pytest

from bench.instructions import callgrind_totals

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
