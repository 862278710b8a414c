"""
C{dmgw api} against the real API site on a loopback port: the command
runs in a thread (it blocks on urllib) while the reactor serves.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tempfile
from typing import Any

from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dmgateway.cli import api as cli
from dmgateway.api.resources import build_site
from tests.api.fakes import FakeApiHandlers
from tests.fixtures import API_ACCOUNT as ACCOUNT, API_DEVICE as DEVICE

TOKEN = "cli-t0ken"
JOB = {"commands": [{"op": "Get", "target": "./DevInfo/Mod"}]}


def temp_path(case: Any, name: str) -> str:
    """
    A path in a fresh directory removed after the test (not in the tree).
    """
    directory = tempfile.mkdtemp(prefix="dmgw-api-cli-")
    case.addCleanup(shutil.rmtree, directory, True)
    return os.path.join(directory, name)


class Result:
    def __init__(self, status: int, out: str, err: str) -> None:
        self.status, self.out, self.err = status, out, err

    @property
    def json(self) -> Any:
        return json.loads(self.out)


class CliTests(TestCase):
    timeout = 20

    def setUp(self) -> None:
        self.service = FakeApiHandlers(Clock())
        port = reactor.listenTCP(0, build_site(self.service, TOKEN), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.url = f"http://127.0.0.1:{port.getHost().port}"
        self.token_file = temp_path(self, "api.token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")

    def dmgw(self, *argv: str, stdin: str = "", token: bool = True) -> Deferred[Result]:
        """
        Run C{dmgw api [--url ...] [--token-file ...] ARGV} in a thread.
        """
        options = ["--url", self.url, "--timeout", "5"]
        if token:
            options += ["--token-file", self.token_file]
        out, err = io.StringIO(), io.StringIO()
        d = threads.deferToThread(
            cli.main, [*options, *argv], out, err, io.StringIO(stdin)
        )
        return d.addCallback(lambda status: Result(status, out.getvalue(), err.getvalue()))

    @inlineCallbacks
    def test_device_put_and_get(self):
        result = yield self.dmgw("device", "put", DEVICE, "--json", json.dumps(ACCOUNT))
        self.assertEqual((result.status, result.json), (0, {"device_id": DEVICE, "created": True}))
        path = temp_path(self, "account.json")
        with open(path, "w") as f:
            json.dump(ACCOUNT, f)
        result = yield self.dmgw("device", "put", DEVICE, "--file", path)
        self.assertEqual((result.status, result.json["created"]), (0, False))
        result = yield self.dmgw("device", "put", DEVICE, "--file", "-", stdin=json.dumps(ACCOUNT))
        self.assertEqual(result.status, 0)
        result = yield self.dmgw("device", "get", DEVICE)
        self.assertEqual(result.status, 0)
        self.assertEqual(result.json["client_auth"]["name"], "dmclient01")
        self.assertIn('\n  "device_id"', result.out)

    @inlineCallbacks
    def test_device_unlock(self):
        result = yield self.dmgw("device", "unlock", DEVICE)
        self.assertEqual(result.status, 1)
        self.assertIn("unknown_device", result.err)
        yield self.dmgw("device", "put", DEVICE, "--json", json.dumps(ACCOUNT))
        result = yield self.dmgw("device", "unlock", DEVICE)
        self.assertEqual((result.status, result.json), (0, {"device_id": DEVICE, "cleared": 0}))
        self.assertIn(("clear_lockouts", (DEVICE,)), self.service.calls)

    @inlineCallbacks
    def test_api_error_exits_1_with_its_message(self):
        result = yield self.dmgw("device", "get", DEVICE)
        self.assertEqual(result.status, 1)
        self.assertEqual(result.out, "")
        self.assertIn("unknown_device: no device 'IMEI:350000000000001' (HTTP 404)", result.err)
        bad = dict(ACCOUNT, imsi="12")
        result = yield self.dmgw("device", "put", DEVICE, "--json", json.dumps(bad))
        self.assertEqual(result.status, 1)
        self.assertIn("invalid_device: imsi must be 6 to 15 digits", result.err)

    @inlineCallbacks
    def test_jobs(self):
        yield self.dmgw("device", "put", DEVICE, "--json", json.dumps(ACCOUNT))
        for _ in range(3):
            result = yield self.dmgw("job", "create", DEVICE, "--json", json.dumps(JOB))
            self.assertEqual(result.status, 0)
        self.assertEqual(result.json, {"id": "job-3", "state": "queued"})
        result = yield self.dmgw("job", "get", "job-2")
        self.assertEqual((result.status, result.json["id"]), (0, "job-2"))
        result = yield self.dmgw("jobs", DEVICE, "--limit", "2", "--json")
        self.assertEqual([j["id"] for j in result.json["jobs"]], ["job-1", "job-2"])
        self.assertEqual(result.json["next"], "job-2")
        result = yield self.dmgw("jobs", DEVICE, "--after", "job-2", "--json")
        self.assertEqual(result.json, {"jobs": [self.service._summary("job-3")], "next": None})
        result = yield self.dmgw("job", "create", DEVICE, "--json", '{"commands": [{"op": "Nop"}]}')
        self.assertEqual(result.status, 1)
        self.assertIn("unknown_op", result.err)

    @inlineCallbacks
    def test_lists_print_tables_by_default(self):
        yield self.dmgw("device", "put", DEVICE, "--json", json.dumps(ACCOUNT))
        yield self.dmgw("job", "create", DEVICE, "--json", json.dumps(JOB))
        self.service.append_event("session", DEVICE, outcome="completed")
        result = yield self.dmgw("devices")
        self.assertEqual(result.status, 0)
        self.assertIn("device", result.out.splitlines()[1] + result.out.splitlines()[2])
        self.assertIn(DEVICE, result.out)
        self.assertIn("dms.example.com", result.out)
        result = yield self.dmgw("jobs", DEVICE)
        self.assertIn("job-1", result.out)
        self.assertIn("queued", result.out)
        result = yield self.dmgw("events")
        self.assertIn("outcome=completed", result.out)
        for command in (("devices",), ("jobs", DEVICE), ("events",)):
            result = yield self.dmgw(*command)
            self.assertRaises(ValueError, json.loads, result.out)

    @inlineCallbacks
    def test_devices_filters_paging_delete_and_cancel(self):
        for n in range(1, 6):
            account = dict(ACCOUNT, server_id="a" if n % 2 else "b")
            yield self.dmgw("device", "put", "IMEI:%d" % n, "--json", json.dumps(account))
        result = yield self.dmgw("devices", "--json", "--limit", "2")
        self.assertEqual([d["device_id"] for d in result.json["devices"]], ["IMEI:1", "IMEI:2"])
        result = yield self.dmgw("devices", "--json", "--limit", "2", "--all", "--server-id", "a")
        self.assertEqual([d["device_id"] for d in result.json["devices"]], ["IMEI:1", "IMEI:3", "IMEI:5"])
        self.assertIsNone(result.json["next"])
        (where, _, _) = [args for name, args in self.service.calls if name == "list_devices"][-1]
        self.assertEqual(where.server_id, "a")
        result = yield self.dmgw("devices", "--has-msisdn", "maybe")
        self.assertEqual(result.status, 2)
        result = yield self.dmgw("job", "create", "IMEI:1", "--json", json.dumps(JOB))
        job_id = result.json["id"]
        result = yield self.dmgw("job", "cancel", job_id)
        self.assertEqual((result.status, result.json["cancelled"]), (0, True))
        result = yield self.dmgw("job", "cancel", job_id)
        self.assertEqual(result.status, 1)
        self.assertIn("job_finished", result.err)
        result = yield self.dmgw("device", "delete", "IMEI:2", "--purge")
        self.assertEqual((result.status, result.json["history"]), (0, "purged"))
        result = yield self.dmgw("device", "get", "IMEI:2")
        self.assertEqual(result.status, 1)

    @inlineCallbacks
    def test_events(self):
        self.service.append_event("session", DEVICE)
        self.service.append_event("session", DEVICE)
        result = yield self.dmgw("events", "--after", "1", "--json")
        self.assertEqual((result.status, [e["seq"] for e in result.json["events"]]), (0, [2]))

    @inlineCallbacks
    def test_events_follow(self):
        self.service.append_event("session", DEVICE)
        waits = []

        def wait_events(after, limit, wait):
            waits.append((after, wait))
            d = FakeApiHandlers.wait_events(self.service, after, limit, wait)
            if after == 1:
                # The client is now long-polling: an event arrives.
                reactor.callLater(0, self.service.append_event, "generic_alert", DEVICE)
            return d

        self.service.wait_events = wait_events
        result = yield self.dmgw("events", "--follow", "--count", "2")
        self.assertEqual(result.status, 0)
        lines = [json.loads(line) for line in result.out.splitlines()]
        self.assertEqual([(e["seq"], e["type"]) for e in lines],
                         [(1, "session"), (2, "generic_alert")])
        self.assertEqual(waits, [(0, 30.0), (1, 30.0)])

    @inlineCallbacks
    def test_wrong_token_exits_1(self):
        result = yield self.dmgw("--token", "wrong", "device", "get", DEVICE, token=False)
        self.assertEqual(result.status, 1)
        self.assertIn("unauthorized", result.err)
        self.assertNotIn("wrong", result.err)

    @inlineCallbacks
    def test_options_after_the_command(self):
        result = yield self.dmgw("device", "get", DEVICE, "--token", TOKEN, token=False)
        self.assertIn("unknown_device", result.err)

    @inlineCallbacks
    def test_input_errors_exit_2(self):
        result = yield self.dmgw("device", "put", DEVICE, "--json", "{nope")
        self.assertEqual(result.status, 2)
        self.assertIn("--json is not valid JSON", result.err)
        result = yield self.dmgw("device", "put", DEVICE, "--file", "/nonexistent/x.json")
        self.assertEqual(result.status, 2)
        result = yield self.dmgw("device", "get", DEVICE, "--token-file", "/nonexistent/t", token=False)
        self.assertEqual(result.status, 2)
        self.assertIn("cannot read token file /nonexistent/t", result.err)
        self.assertEqual(self.service.calls, [])


class OfflineTests(SynchronousTestCase):
    def test_usage_errors_exit_2(self):
        err = io.StringIO()
        self.assertEqual(cli.main([], stderr=err), 2)
        self.assertEqual(cli.main(["device", "put", DEVICE]), 2)
        self.assertEqual(cli.main(["events", "--after", "x"]), 2)

    def test_connection_refused_exits_2(self):
        out, err = io.StringIO(), io.StringIO()
        status = cli.main(
            ["--url", "http://127.0.0.1:1", "--token", "x", "device", "get", DEVICE], out, err
        )
        self.assertEqual(status, 2)
        self.assertIn("cannot reach http://127.0.0.1:1", err.getvalue())

    def test_add_arguments_for_dmgw(self):
        parser = argparse.ArgumentParser(prog="dmgw")
        cli.add_arguments(parser.add_subparsers(dest="command"))
        args = parser.parse_args(["api", "jobs", DEVICE, "--limit", "5"])
        self.assertEqual((args.command, args.device_id, args.limit), ("api", DEVICE, 5))
        self.assertEqual((args.url, args.token_file), (cli.DEFAULT_URL, cli.DEFAULT_TOKEN_FILE))
        self.assertIs(args.func, cli.run)

    def test_empty_token_file(self):
        path = temp_path(self, "empty.token")
        with open(path, "w") as f:
            f.write("\n")
        err = io.StringIO()
        self.assertEqual(cli.main(["--token-file", path, "device", "get", DEVICE], stderr=err), 2)
        self.assertIn("is empty", err.getvalue())


class _FakeDelegations:
    """Stands in for dmgateway.delegation.flow.DelegationService behind the API."""

    def __init__(self) -> None:
        self.views: dict[str, dict[str, Any]] = {}

    async def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        view = {"id": "d%d" % (len(self.views) + 1,), "state": "preparing", "peer": spec["peer"],
                "devices": spec["devices"], "history": []}
        self.views[view["id"]] = view
        return view

    async def get(self, delegation_id: str) -> dict[str, Any] | None:
        return self.views.get(delegation_id)

    async def revoke(self, delegation_id: str) -> dict[str, Any] | None:
        view = self.views.get(delegation_id)
        if view is not None:
            view["state"] = "revoking"
        return view


class DelegationCliTests(TestCase):
    timeout = 20
    setUp = CliTests.setUp
    dmgw = CliTests.dmgw

    @inlineCallbacks
    def test_delegation_commands(self):
        result = yield self.dmgw("delegation", "get", "d1")
        self.assertEqual(result.status, 1)
        self.assertIn("not_enabled", result.err)
        self.service.delegation = _FakeDelegations()
        body = {"peer": "dms-b", "devices": [DEVICE], "subtrees": ["./Vendor/X"],
                "type": "partial", "duration": "temporary"}
        result = yield self.dmgw("delegation", "create", "--json", json.dumps(body))
        self.assertEqual((result.status, result.json["id"]), (0, "d1"))
        result = yield self.dmgw("delegation", "create", "--json", json.dumps(dict(body, type="x")))
        self.assertEqual(result.status, 1)
        self.assertIn("invalid_request: type must be", result.err)
        result = yield self.dmgw("delegation", "revoke", "d1")
        self.assertEqual((result.status, result.json["state"]), (0, "revoking"))
        result = yield self.dmgw("delegation", "get", "d2")
        self.assertEqual(result.status, 1)
        self.assertIn("unknown_delegation", result.err)
