"""Requests a client should never send still get the error envelope of API.md — never
an HTML page, never a 5xx — whatever layer refuses them."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _assert_envelope(response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.content[:200])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert set(body["error"]) == {"code", "message", "details"}


def test_unknown_host_header_answers_the_envelope():
    response = Client(HTTP_HOST="attacker.example.com").get("/api/v1/products/")
    _assert_envelope(response, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "VALIDATION_ERROR"),
        ("[1, 2, 3]", "application/json", 400, "VALIDATION_ERROR"),
        ('{"currency": {"nested": true}}', "application/json", 400, "VALIDATION_ERROR"),
        ("currency=USD", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("\udcff", "application/json", 400, "VALIDATION_ERROR"),
    ],
    ids=["malformed json", "json array", "nested value", "form body", "undecodable"],
)
def test_bad_bodies_answer_the_envelope(body, content_type, status, code):
    data = body.encode("utf-8", "surrogateescape")
    response = Client().post("/api/v1/carts/", data, content_type=content_type)
    _assert_envelope(response, status, code)


def test_unsupported_method_answers_the_envelope():
    _assert_envelope(Client().generic("TRACE", "/api/v1/carts/"), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/carts/not-a-uuid/",
        "/api/v1/carts/00000000-0000-0000-0000-000000000000/items/-1/",
        "/api/v1/" + "x" * 5000 + "/",
        "/api/v1/products/%00/",
        "/api/v1/orders/%F0%9F%92%A5/",
    ],
    ids=["malformed uuid", "negative item id", "very long path", "nul byte", "emoji id"],
)
def test_odd_paths_answer_not_found_in_the_envelope(path):
    response = Client().get(path)
    assert response.status_code == 404, response.content[:200]
    assert response.json()["error"]["code"].endswith("NOT_FOUND")


def test_overlong_idempotency_key_is_a_validation_error():
    client = Client()
    created = client.post("/api/v1/carts/", "{}", content_type="application/json").json()
    response = client.post(
        f"/api/v1/carts/{created['id']}/checkout/confirm/",
        "{}",
        content_type="application/json",
        headers={"X-Cart-Token": created["token"], "Idempotency-Key": "k" * 256},
    )
    _assert_envelope(response, 400, "VALIDATION_ERROR")
