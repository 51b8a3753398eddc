"""One shopper can never read, edit, check out or cancel another's cart: a missing or
wrong token answers exactly like a cart that does not exist."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from carts.models import Cart
from inventory.models import Reservation, StockLevel
from tests.support import ADDRESS, Shopper, assert_error, stocked
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db

NOT_FOUND = {"code": "CART_NOT_FOUND", "message": "Cart not found", "details": {}}


def endpoints(victim: Shopper, item_id: int) -> list[tuple[str, str, dict | None]]:
    cart = f"carts/{victim.cart_id}"
    return [
        ("get", f"{cart}/", None),
        ("post", f"{cart}/items/", {"sku": "SHARED", "quantity": 1}),
        ("patch", f"{cart}/items/{item_id}/", {"quantity": 3}),
        ("get", f"{cart}/validate-stock/", None),
        ("post", f"{cart}/checkout/", {}),
        ("get", f"{cart}/checkout/", None),
        ("patch", f"{cart}/checkout/", {"shipping_address": ADDRESS, "payment_method": "card"}),
        ("delete", f"{cart}/checkout/", None),
        ("delete", f"{cart}/items/{item_id}/", None),
    ]


@pytest.fixture
def victim() -> tuple[Shopper, int]:
    stocked(sku="SHARED", on_hand=10)
    shopper = Shopper()
    item_id = shopper.cart_with(("SHARED", 2))["items"][0]["id"]
    return shopper, item_id


def snapshot(cart_id: str) -> tuple:
    cart = Cart.objects.get(id=cart_id)
    return (
        cart.status,
        cart.updated_at,
        cart.shipping_address,
        list(cart.items.values_list("id", "quantity")),
        list(Reservation.objects.filter(cart_id=cart_id).values_list("id", "status")),
        list(StockLevel.objects.values_list("id", "reserved")),
    )


@pytest.mark.parametrize("in_checkout", [False, True], ids=["active", "checkout"])
@pytest.mark.parametrize(
    "token",
    ["other", "none", "garbage", "hash"],
    ids=["another_carts_token", "no_token", "garbage_token", "the_stored_hash"],
)
def test_no_endpoint_opens_a_cart_without_its_own_token(victim, token, in_checkout):
    shopper, item_id = victim
    if in_checkout:
        assert shopper.start().status_code == 201
    intruder = Shopper()
    intruder.create_cart()
    presented = {
        "other": intruder.token,
        "none": "",
        "garbage": "x" * 43,
        "hash": Cart.objects.get(id=shopper.cart_id).token_hash,
    }[token]
    before = snapshot(shopper.cart_id)

    for method, path, body in endpoints(shopper, item_id):
        response = intruder.call(method, path, body, token=presented)
        assert response.status_code == 404, (method, path, response.content)
        assert assert_error(response) == NOT_FOUND, (method, path)

    assert snapshot(shopper.cart_id) == before


def test_a_wrong_token_answers_exactly_like_a_cart_that_does_not_exist(victim):
    shopper, _ = victim
    intruder = Shopper()
    intruder.create_cart()

    wrong = intruder.call("get", f"carts/{shopper.cart_id}/")
    missing = intruder.call("get", f"carts/{uuid.uuid4()}/")

    assert (wrong.status_code, wrong.json()) == (missing.status_code, missing.json())


def test_the_owner_reaches_every_endpoint_with_the_token(victim):
    shopper, item_id = victim

    statuses = [shopper.call(m, p, b).status_code for m, p, b in endpoints(shopper, item_id)]

    assert statuses == [200, 201, 200, 200, 201, 200, 200, 200, 200]


def test_a_customer_cannot_use_another_customers_cart():
    stocked(sku="MINE", on_hand=5)
    owner_client, other_client = APIClient(), APIClient()
    owner_client.force_authenticate(UserFactory())
    other_client.force_authenticate(UserFactory())
    owner = Shopper(owner_client)
    item_id = owner.cart_with(("MINE", 1))["items"][0]["id"]
    other = Shopper(other_client)

    for method, path, body in endpoints(owner, item_id):
        response = other.call(method, path, body, token="")
        assert response.status_code == 404, (method, path)
        assert assert_error(response) == NOT_FOUND


def test_an_anonymous_cart_is_not_opened_by_logging_in():
    stocked(sku="ANON", on_hand=5)
    anonymous = Shopper()
    anonymous.cart_with(("ANON", 1))
    client = APIClient()
    client.force_authenticate(UserFactory())

    response = client.get(f"/api/v1/carts/{anonymous.cart_id}/")

    assert response.status_code == 404
    assert assert_error(response) == NOT_FOUND
