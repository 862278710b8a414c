"""Check real REST API answers against docs/openapi.yaml (openapi-core), so the
document and the code cannot drift.

``check_response(method, target, status, content_type, body, headers)`` raises
``AssertionError`` naming the route when the answer's status is not documented
for that route or its JSON does not match the documented schema.  Paths the
document does not have (tests of unknown paths) are not checked here:
tests/api/test_openapi.py checks that the routes themselves match.
"""

from __future__ import annotations

import functools
import os
from urllib.parse import parse_qsl, urlsplit

from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse

SPEC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "openapi.yaml")


@functools.lru_cache(maxsize=1)
def spec() -> OpenAPI:
    return OpenAPI.from_file_path(SPEC)


#: How many answers were checked (a test asserts the hook ran).
checked = {"count": 0}


def check_response(method, target, status, content_type, body, headers=None):
    parts = urlsplit(target)
    request = MockRequest(
        "http://127.0.0.1:8081",
        method,
        parts.path,
        args=parse_qsl(parts.query, keep_blank_values=True),
        headers={"Authorization": "Bearer x"},
    )
    response = MockResponse(body or b"", status_code=status, headers=headers or {},
                            content_type=(content_type or "").split(";")[0].strip())
    try:
        spec().validate_response(request, response)
    except (PathNotFound, OperationNotFound):
        return False
    except Exception as e:  # the validator's own errors: say which answer and why
        errors = getattr(e, "schema_errors", None) or getattr(e.__cause__, "schema_errors", None) or ()
        detail = "; ".join(getattr(x, "message", str(x)) for x in errors) or repr(e.__cause__ or e)
        raise AssertionError(
            "%s %s -> %s does not match docs/openapi.yaml: %s\n%s"
            % (method, target, status, detail, (body or b"")[:500])
        ) from e
    checked["count"] += 1
    return True
