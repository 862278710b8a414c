"""
docs/openapi.yaml describes exactly the routes and methods the API serves.
(Read without a YAML library: paths are two-space keys under "paths:",
methods four-space keys under them.)
"""

from __future__ import annotations

import os
import re

from tests.api.test_resources import ApiTestCase

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi.yaml")
SAMPLES = {"{device_id}": "IMEI%3A350000000000001", "{job_id}": "job-1",
           "{delegation_id}": "d-1"}


def documented() -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    in_paths = False
    path = None
    with open(SPEC, encoding="utf-8") as f:
        for line in f:
            if re.match(r"^\S", line):
                in_paths = line.startswith("paths:")
                continue
            if not in_paths:
                continue
            key = re.match(r"^  (/\S*):\s*$", line)
            if key:
                path = key.group(1)
                routes[path] = set()
                continue
            method = re.match(r"^    (get|put|post|delete|patch):", line)
            if method and path:
                routes[path].add(method.group(1).upper())
    return routes


class OpenApiTests(ApiTestCase):
    def test_documented_routes_are_served(self):
        routes = documented()
        self.assertEqual(
            set(routes),
            {"/api/v1/devices/{device_id}", "/api/v1/devices/{device_id}/jobs",
             "/api/v1/devices/{device_id}/bootstrap", "/api/v1/devices/{device_id}/lockouts",
             "/api/v1/jobs/{job_id}", "/api/v1/events", "/metrics",
             "/api/v1/delegations", "/api/v1/delegations/{delegation_id}"},
        )
        for path, methods in routes.items():
            if path == "/metrics":
                self.assertEqual(methods, {"GET"})
                continue
            url = path
            for name, value in SAMPLES.items():
                url = url.replace(name, value)
            response = self.call("PATCH", url)
            self.assertEqual(response.status, 405, path)
            served = set(response.header("allow").split(", ")) - {"HEAD"}
            self.assertEqual(served, methods, path)
