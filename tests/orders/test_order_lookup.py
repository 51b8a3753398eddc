"""Finding an order from another device (API.md v1.1 "Orders"): the email given at checkout
is copied to the order; ``POST orders/lookup/`` with the number and that email answers the
order and a token that reads it later as ``X-Order-Token``; a wrong pair answers the same
404 whichever half is wrong; lookups are throttled per client."""

from __future__ import annotations

import itertools
import time
from unittest import mock

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from checkout.confirm import confirm_checkout
from checkout.services import update_checkout
from orders.models import Order
from orders.tokens import issue_order_token
from tests.support import API, TOKEN, assert_error, cart_in_checkout, stocked

pytestmark = pytest.mark.django_db

EMAIL = "Ada.Lovelace@example.org"
# Each test's client has its own address, so the throttle's counts in the shared Redis
# cache never carry over from one test (or run) to the next.
_addresses = itertools.count(1)


@pytest.fixture
def client() -> APIClient:
    n = next(_addresses)
    return APIClient(REMOTE_ADDR=f"10.{int(time.time()) % 250}.{n // 250}.{n % 250}")


def place_order(*, email: str = EMAIL, token: str = TOKEN) -> Order:
    cart = cart_in_checkout((stocked(price="3.00"), 1), token=token)
    if email:
        update_checkout(cart_id=cart.id, changes={"email": email}, actor="test")
    result = confirm_checkout(cart_id=cart.id)
    assert result.created
    return result.order


def lookup(client: APIClient, number: str, email: str):
    return client.post(f"{API}/orders/lookup/", {"number": number, "email": email}, format="json")


def read(client: APIClient, order: Order, *, order_token: str | None):
    headers = {"HTTP_X_ORDER_TOKEN": order_token} if order_token else {}
    return client.get(f"{API}/orders/{order.id}/", **headers)


# --- the email on the order ---------------------------------------------------------------


def test_the_checkout_email_is_copied_to_the_order_and_shown(client):
    order = place_order()

    assert order.email == EMAIL
    body = client.get(f"{API}/orders/{order.id}/", HTTP_X_CART_TOKEN=TOKEN).json()
    assert body["email"] == EMAIL


def test_an_order_without_an_email_shows_it_empty(client):
    order = place_order(email="")

    assert order.email == ""
    assert client.get(f"{API}/orders/{order.id}/", HTTP_X_CART_TOKEN=TOKEN).json()["email"] == ""


# --- lookup ---------------------------------------------------------------------------------


def test_number_and_email_answer_the_order_and_a_token_that_reads_it(client):
    order = place_order()

    response = lookup(client, order.number, EMAIL)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(order.id)
    assert body["number"] == order.number
    assert body["email"] == EMAIL
    assert body["items"][0]["quantity"] == 1
    token = body["token"]
    assert token and TOKEN not in token

    later = read(APIClient(), order, order_token=token)
    assert later.status_code == 200
    assert later.json()["id"] == str(order.id)
    assert "token" not in later.json()


def test_number_and_email_match_whatever_their_letter_case(client):
    order = place_order()

    response = lookup(client, order.number.lower(), f"  {EMAIL.upper()} ")

    assert response.status_code == 200
    assert response.json()["id"] == str(order.id)


def test_a_wrong_half_answers_the_same_404_whichever_it_is(client, django_assert_num_queries):
    order = place_order()
    other = place_order(email="someone.else@example.org", token="other-cart-token")

    answers = []
    for number, email in [
        ("ORD-999999999", EMAIL),  # no such number
        (order.number, "someone.else@example.org"),  # another order's email
        (other.number, EMAIL),  # another order's number
        (order.number, "ada@example.org"),  # a wrong email
    ]:
        # One query each: the same work whichever half is wrong.
        with django_assert_num_queries(1):
            response = lookup(client, number, email)
        error = assert_error(response, 404, "ORDER_NOT_FOUND")
        answers.append((response.status_code, error))
    assert all(answer == answers[0] for answer in answers)


def test_an_order_placed_without_an_email_cannot_be_looked_up(client):
    order = place_order(email="")

    assert_error(lookup(client, order.number, "anything@example.org"), 404, "ORDER_NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"number": "ORD-1"}, "email"),
        ({"email": EMAIL}, "number"),
        ({"number": "ORD-1", "email": "nope"}, "email"),
    ],
)
def test_a_missing_or_malformed_half_is_a_validation_error(client, body, field):
    response = client.post(f"{API}/orders/lookup/", body, format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["details"]["fields"]


# --- the token ------------------------------------------------------------------------------


def test_the_token_reads_only_its_own_order(client):
    order = place_order()
    other = place_order(token="other-cart-token")
    token = lookup(client, order.number, EMAIL).json()["token"]

    assert_error(read(APIClient(), other, order_token=token), 404, "ORDER_NOT_FOUND")


@pytest.mark.parametrize("token", ["", "not-a-token", "tampered"])
def test_a_missing_or_forged_token_reads_nothing(client, token):
    order = place_order()
    if token == "tampered":
        real = issue_order_token(order_id=order.id)
        token = real[:-2] + ("AA" if not real.endswith("AA") else "BB")

    assert_error(read(APIClient(), order, order_token=token), 404, "ORDER_NOT_FOUND")


def test_the_token_expires_after_its_max_age(client, settings):
    settings.ORDER_LOOKUP_TOKEN_MAX_AGE_SECONDS = 600
    order = place_order()
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 601):
        old = issue_order_token(order_id=order.id)
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 500):
        recent = issue_order_token(order_id=order.id)

    assert_error(read(APIClient(), order, order_token=old), 404, "ORDER_NOT_FOUND")
    assert read(APIClient(), order, order_token=recent).status_code == 200


def test_the_token_does_not_cancel_the_order(client):
    order = place_order()
    token = lookup(client, order.number, EMAIL).json()["token"]

    response = client.post(
        f"{API}/orders/{order.id}/cancel/", {}, format="json", HTTP_X_ORDER_TOKEN=token
    )

    assert_error(response, 404, "ORDER_NOT_FOUND")
    order.refresh_from_db()
    assert order.status == "pending"


# --- throttling -----------------------------------------------------------------------------


def test_lookups_past_the_rate_are_throttled_per_client(client, settings):
    settings.ORDER_LOOKUP_THROTTLE = "2/min"
    order = place_order()

    assert lookup(client, order.number, "wrong@example.org").status_code == 404
    assert lookup(client, order.number, "wrong@example.org").status_code == 404
    throttled = lookup(client, order.number, EMAIL)

    error = assert_error(throttled, 429, "THROTTLED")
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert error["details"]["retry_after"] == int(throttled["Retry-After"])
    # The counts are kept in the cache (Redis), so every worker sees them.
    address = client.defaults["REMOTE_ADDR"]
    assert len(cache.get(f"throttle_order_lookup_{address}")) == 2
    # Another client is not affected.
    n = next(_addresses)
    fresh = APIClient(REMOTE_ADDR=f"10.251.{n // 250}.{n % 250}")
    assert lookup(fresh, order.number, EMAIL).status_code == 200


def test_a_made_up_forwarded_for_address_does_not_dodge_the_rate(client, settings):
    settings.ORDER_LOOKUP_THROTTLE = "1/min"
    order = place_order()

    first = client.post(
        f"{API}/orders/lookup/",
        {"number": order.number, "email": EMAIL},
        format="json",
        HTTP_X_FORWARDED_FOR="203.0.113.1",
    )
    second = client.post(
        f"{API}/orders/lookup/",
        {"number": order.number, "email": EMAIL},
        format="json",
        HTTP_X_FORWARDED_FOR="203.0.113.2",
    )

    assert first.status_code == 200
    assert_error(second, 429, "THROTTLED")
