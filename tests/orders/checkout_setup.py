"""Shared set-up for the confirm, reconciliation and orders tests: a cart put in checkout
through the real checkout service, and a shopper's confirm call over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import connection
from rest_framework.test import APIClient

from carts.models import Cart
from carts.tokens import hash_token
from checkout.services import start_checkout
from inventory.models import StockLevel
from tests.factories import CartFactory, CartItemFactory, ProductFactory, StockLevelFactory

API = "/api/v1"
TOKEN = "shopper-secret-token"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "line2": "",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}
BILLING = {**ADDRESS, "name": "Charles Babbage", "line1": "1 Dorset Street"}


def stocked(*, on_hand: int = 10, price: str = "10.00") -> StockLevel:
    """A product with ``on_hand`` units in the default warehouse."""
    return StockLevelFactory(product=ProductFactory(price=Decimal(price)), on_hand=on_hand)


def numbers(stock: StockLevel) -> tuple[int, int]:
    """``(on_hand, reserved)`` of a stock row as committed now."""
    stock.refresh_from_db()
    return stock.on_hand, stock.reserved


def cart_in_checkout(
    *lines: tuple[StockLevel, int],
    payment_method: str = "card",
    shipping_address: dict[str, Any] | None = ADDRESS,
    billing_address: dict[str, Any] | None = BILLING,
    customer=None,
    token: str = TOKEN,
) -> Cart:
    """A cart holding ``(stock, quantity)`` lines, with address and payment method saved,
    whose checkout was started by ``checkout.services.start_checkout``."""
    cart = CartFactory(
        token_hash=hash_token(token),
        customer=customer,
        shipping_address=shipping_address,
        billing_address=billing_address,
        payment_method=payment_method,
    )
    for stock, quantity in lines:
        CartItemFactory(
            cart=cart, product=stock.product, warehouse=stock.warehouse, quantity=quantity
        )
    cart, _ = start_checkout(cart_id=cart.id, actor="test")
    return cart


def confirm(
    client: APIClient,
    cart: Cart,
    *,
    key: str | None = None,
    token: str | None = TOKEN,
    body: Any = None,
):
    headers: dict[str, str] = {}
    if token:
        headers["HTTP_X_CART_TOKEN"] = token
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(
        f"{API}/carts/{cart.id}/checkout/confirm/", body or {}, format="json", **headers
    )


def error_of(response) -> dict[str, Any]:
    """The error envelope of a non-2xx answer, checked for its exact shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


def refuse_new_orders() -> None:
    """Installs a trigger that makes every INSERT into the orders table fail — a failure
    of the database while the order is written, after the payment was captured."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE OR REPLACE FUNCTION test_refuse_orders() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'orders are refused by the test'; END
            $$ LANGUAGE plpgsql;
            DROP TRIGGER IF EXISTS test_refuse_orders ON orders_order;
            CREATE TRIGGER test_refuse_orders BEFORE INSERT ON orders_order
                FOR EACH ROW EXECUTE FUNCTION test_refuse_orders();
            """
        )


def accept_new_orders() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS test_refuse_orders ON orders_order")
