"""The error envelope of API.md, checked exactly."""

from __future__ import annotations

from typing import Any


def assert_error(response, status: int | None = None, code: str | None = None) -> dict[str, Any]:
    """Asserts that ``response`` is the API.md envelope, exactly:
    ``{"error": {"code", "message", "details"}}`` as JSON, with a non-empty message and a
    details object; and its ``status`` and ``code`` when given. Returns the error."""
    if status is not None:
        assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, body
    if code is not None:
        assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["details"], dict), body
    return error
