"""Hostile JSON bodies (``core.parsers.SafeJSONParser``): each answers 400
VALIDATION_ERROR with ``details.fields.body``, touches nothing, and the limits leave
ordinary bodies alone."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from carts.models import CartItem
from core import parsers
from tests.support import assert_error
from tests.support.factories import StockLevelFactory
from tests.support.hostile import HOSTILE_BODIES

pytestmark = pytest.mark.django_db


@pytest.fixture
def cart():
    client = Client()
    created = client.post("/api/v1/carts/", "{}", content_type="application/json").json()
    return client, created["id"], {"X-Cart-Token": created["token"]}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_hostile_body_on_add_item_is_a_validation_error(cart, body):
    client, cart_id, headers = cart
    started = time.monotonic()

    response = client.post(
        f"/api/v1/carts/{cart_id}/items/", body, content_type="application/json", headers=headers
    )

    error = assert_error(response, 400, "VALIDATION_ERROR")
    [message] = error["details"]["fields"]["body"]
    assert message.startswith("JSON parse error"), message
    assert time.monotonic() - started < 5
    assert not CartItem.objects.filter(cart_id=cart_id).exists()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (HOSTILE_BODIES["a megabyte of ["], "Nested deeper than 32"),
        (HOSTILE_BODIES["arrays nested 33 deep"], "Nested deeper than 32"),
        (HOSTILE_BODIES["100000-digit integer"], "more than 64 digits"),
        (HOSTILE_BODIES["exponent 1e999999"], "out of range"),
        (HOSTILE_BODIES["NaN"], "NaN is not valid JSON"),
        (HOSTILE_BODIES["invalid UTF-8"], "not valid utf-8"),
        (HOSTILE_BODIES["unpaired surrogate"], "unpaired surrogates"),
        (HOSTILE_BODIES["NUL character"], "NUL"),
        (HOSTILE_BODIES["duplicate key"], 'Duplicate key "quantity"'),
        (HOSTILE_BODIES["body over 2.5 MB"], "larger than"),
    ],
)
def test_the_message_says_what_is_wrong(cart, body, needle):
    client, cart_id, headers = cart
    response = client.post(
        f"/api/v1/carts/{cart_id}/items/", body, content_type="application/json", headers=headers
    )
    assert needle in assert_error(response, 400)["details"]["fields"]["body"][0]


def test_hostile_body_on_a_staff_endpoint_is_a_validation_error(admin_client):
    response = admin_client.post(
        "/api/v1/products/", HOSTILE_BODIES["a megabyte of ["], content_type="application/json"
    )
    assert_error(response, 400, "VALIDATION_ERROR")


def test_bodies_within_the_limits_parse_as_before():
    nested = "[" * (parsers.MAX_DEPTH) + "]" * (parsers.MAX_DEPTH)
    assert parsers.loads(nested.encode()) is not None
    big = "9" * parsers.MAX_INTEGER_DIGITS
    assert parsers.loads(f'{{"n": -{big}, "f": 1.5e300, "s": "é ✓ 💥"}}'.encode()) == {
        "n": -int(big),
        "f": 1.5e300,
        "s": "é ✓ 💥",
    }
    assert parsers.loads(b'{"a": {"a": 1}, "b": [{"a": 2}]}')["b"] == [{"a": 2}]


def test_a_good_body_still_adds_the_line(cart):
    stock = StockLevelFactory(on_hand=5)
    client, cart_id, headers = cart
    response = client.post(
        f"/api/v1/carts/{cart_id}/items/",
        f'{{"sku": "{stock.product.sku}", "quantity": 2}}'.encode(),
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 201, response.content
