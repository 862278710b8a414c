"""dm.jobs: per-job book-keeping and the JobFinished it produces."""

from dmgateway.codec import syncml as sm
from dmgateway.dm.effects import JobSpec
from dmgateway.dm.jobs import FINISHED, QUEUED, JobRun


def sent(job):
    for unit in job.units:
        unit.state = "sent"
    return job


def test_units_one_per_command_or_one_atomic():
    plain = JobRun(JobSpec("p", [{"op": "Get", "target": "./A"}, {"op": "Delete", "target": "./B"}]))
    assert [u.indexes for u in plain.units] == [[0], [1]] and plain.state == QUEUED
    atomic = JobRun(JobSpec("a", [{"op": "Add", "target": "./A", "data": "1"},
                                  {"op": "Delete", "target": "./B"}], atomic=True))
    assert [u.indexes for u in atomic.units] == [[0, 1]] and atomic.units[0].atomic


def test_get_settles_only_with_results():
    job = sent(JobRun(JobSpec("j", [{"op": "Get", "target": "./A"}])))
    assert not job.settled()
    job.set_status(0, sm.Status(data=200))
    assert not job.settled()
    assert job.set_results(0, {"data": "x", "format": "chr", "type": None})
    assert not job.set_results(0, {"data": "y"})  # a second Results is refused
    assert job.settled()
    finished = job.finish()
    assert finished.state == "done" and finished.results[0]["data"] == "x" and job.state == FINISHED


def test_duplicate_status_refused():
    job = sent(JobRun(JobSpec("j", [{"op": "Delete", "target": "./A"}])))
    assert job.set_status(0, sm.Status(data=404))
    assert not job.set_status(0, sm.Status(data=200))
    assert job.finish().results[0]["status"] == 404


def test_queued_unit_keeps_job_open():
    job = JobRun(JobSpec("j", [{"op": "Delete", "target": "./A"}]))
    job.set_status(0, sm.Status(data=200))
    assert not job.settled()


def test_dropped_unit_fails_job_with_its_code():
    job = JobRun(JobSpec("j", [{"op": "Replace", "target": "./A", "data": "x"},
                               {"op": "Delete", "target": "./B"}]))
    job.fail_unit(job.units[0], "too_large", "too big", status=413)
    job.units[1].state = "sent"
    job.set_status(1, sm.Status(data=200))
    assert job.settled()
    finished = job.finish()
    assert finished.state == "failed" and finished.error == {"code": "too_large", "message": "too big"}
    assert [r["status"] for r in finished.results] == [413, 200]


def test_abandon_keeps_what_is_known():
    job = sent(JobRun(JobSpec("j", [{"op": "Delete", "target": "./A"}, {"op": "Get", "target": "./B"}])))
    job.set_status(0, sm.Status(data=200))
    finished = job.abandon("session_timeout", "no answer")
    assert finished.state == "failed" and finished.error["code"] == "session_timeout"
    assert [r["status"] for r in finished.results] == [200, None]


def test_unit_chunks_repeat_meta_and_size_only_first():
    job = JobRun(JobSpec("j", [{"op": "Replace", "target": "./B", "data": "abcdef", "type": "text/plain"}]))
    unit = job.units[0]
    unit.start_chunks()
    first = unit.render_chunk(4)
    assert first.items[0].meta == sm.Meta(format="chr", type="text/plain", size=6)
    assert first.items[0].data == "abcd" and first.items[0].more_data
    unit.outgoing.advance(4)
    last = unit.render_chunk(2)
    assert last.items[0].meta == sm.Meta(format="chr", type="text/plain")
    assert last.items[0].data == "ef" and not last.items[0].more_data
    assert unit.template.items[0].data == "abcdef"  # the template is never changed


def test_rendered_commands_are_independent_of_the_template():
    # the first render is the template (numbering changes only its CmdID);
    # later ones copy only what numbering and chunking change
    from dmgateway.dm.packaging import number

    job = JobRun(JobSpec("a", [{"op": "Replace", "target": "./A", "data": "1", "type": "text/plain"},
                               {"op": "Delete", "target": "./B"}], atomic=True))
    unit = job.units[0]
    first = unit.render()
    assert first is unit.template
    number(first, 1)
    before = repr(unit.template)
    second, third = unit.render(), unit.render()
    assert second is not unit.template and third is not second
    number(second, 5)
    second.commands[0].items[0].data = "changed"
    second.commands[0].items[0].more_data = True
    assert second.cmd_id == "5"
    assert [c.cmd_id for c in second.commands] == ["6", "7"]
    assert repr(unit.template) == before and repr(third) == before
    assert third.commands[0].items[0].data == "1"
