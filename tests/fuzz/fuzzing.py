"""What the fuzz tests share: schemathesis's configuration (bounded, seeded), the check
that every error answer is the envelope of API.md, and the fixture that keeps the test's
database connection open across in-process WSGI requests. A test module uses the fixture
by importing it (it is autouse)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "12"))
# The coverage phase (boundary values of every parameter) doubles the run time.
COVERAGE = os.environ.get("FUZZ_COVERAGE", "") not in ("", "0")

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261124,
        "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "database": "none"},
        "phases": {"coverage": {"enabled": COVERAGE}, "stateful": {"enabled": False}},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
        },
    }
)


def error_envelope(ctx: Any, response: Any, case: Any) -> None:
    """Every non-2xx answer is the one error envelope of API.md."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/json"), f"error as {content_type!r}"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the envelope: {body!r}"
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, f"envelope keys: {sorted(error)}"
    assert isinstance(error["code"], str) and error["code"].isupper(), error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], dict), error


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Like Django's test client: the WSGI handler must not close the test's database
    connection at the end of each request (it is inside the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
