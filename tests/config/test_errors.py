"""Every non-2xx API answer is the envelope of API.md, whatever produced it."""

import pytest

from tests.support.envelope import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.config.urls_for_errors")]


def test_unknown_api_route_is_not_found_envelope(api_client):
    assert_error(api_client.get("/api/v1/no-such-thing/"), 404, "NOT_FOUND")


def test_unknown_route_without_slash_is_envelope_too(api_client):
    assert_error(api_client.get("/api/v1/no-such-thing"), 404, "NOT_FOUND")


def test_malformed_json_is_validation_error(api_client):
    response = api_client.post("/api/v1/echo/", data="{not json", content_type="application/json")
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "body" in error["details"]["fields"]


def test_drf_validation_error_lists_fields(api_client):
    response = api_client.post("/api/v1/echo/", {"quantity": 0}, format="json")
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["quantity"]
    assert error["details"]["fields"]["quantity"]


def test_nested_validation_errors_are_flattened(api_client):
    response = api_client.post(
        "/api/v1/echo/", {"quantity": 1, "lines": [{"a": 1}, {"b": "x"}]}, format="json"
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "lines.1.b" in error["details"]["fields"]


def test_method_not_allowed_is_envelope(api_client):
    response = api_client.delete("/api/v1/echo/")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")


def test_unsupported_media_type_is_envelope(api_client):
    response = api_client.post("/api/v1/echo/", data="quantity=1", content_type="text/plain")
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_application_error_carries_code_and_details(api_client):
    error = assert_error(api_client.get("/api/v1/domain/"), 409, "TEAPOT")
    assert error["details"] == {"status": "brewing"}


def test_uncaught_exception_is_500_envelope_without_internals(client):
    client.raise_request_exception = False
    response = client.get("/api/v1/boom/")
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert "secret" not in response.content.decode()
    assert error["details"] == {}


def test_every_response_carries_a_request_id(api_client):
    response = api_client.get("/api/v1/domain/", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    generated = api_client.get("/api/v1/domain/", HTTP_X_REQUEST_ID="bad id with spaces")
    assert (
        generated["X-Request-ID"] != "bad id with spaces" and len(generated["X-Request-ID"]) == 32
    )
