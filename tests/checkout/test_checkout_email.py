"""The shopper's optional email on the checkout (API.md v1.1 "Carts and checkout"): set by
``PATCH``, validated, shown in the state, cleared with an empty string, and copied to the
order when it is written."""

from __future__ import annotations

import pytest

from carts.models import Cart
from orders.models import Order
from tests.support import ADDRESS, Shopper, assert_error, stocked

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper() -> Shopper:
    shopper = Shopper()
    shopper.cart_with((stocked(on_hand=5).product.sku, 1))
    assert shopper.start().status_code == 201
    return shopper


def test_the_state_has_an_empty_email_until_one_is_given(shopper):
    assert shopper.state().json()["email"] == ""


def test_an_email_is_saved_and_shown_in_the_state(shopper):
    response = shopper.update({"email": "ada@example.org"})

    assert response.status_code == 200
    assert response.json()["email"] == "ada@example.org"
    assert shopper.state().json()["email"] == "ada@example.org"
    assert Cart.objects.get(id=shopper.cart_id).email == "ada@example.org"


def test_an_empty_string_clears_the_email(shopper):
    shopper.update({"email": "ada@example.org"})

    assert shopper.update({"email": ""}).json()["email"] == ""


@pytest.mark.parametrize("email", ["not-an-email", "ada@", "a" * 250 + "@example.org"])
def test_an_invalid_email_is_refused_and_nothing_is_saved(shopper, email):
    shopper.update({"email": "ada@example.org"})

    response = shopper.update({"email": email, "payment_method": "test_decline"})

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "email" in error["details"]["fields"]
    cart = Cart.objects.get(id=shopper.cart_id)
    assert (cart.email, cart.payment_method) == ("ada@example.org", "")


def test_the_email_is_copied_to_the_order_at_confirm(shopper):
    shopper.update(
        {"email": "ada@example.org", "shipping_address": ADDRESS, "payment_method": "card"}
    )

    response = shopper.call("post", f"carts/{shopper.cart_id}/checkout/confirm/", {})

    assert response.status_code == 201, response.content
    assert response.json()["email"] == "ada@example.org"
    assert Order.objects.get(id=response.json()["id"]).email == "ada@example.org"
