"""Carts put in checkout through the real checkout service, a shopper's confirm call over
HTTP, paid orders, and a database that refuses to write orders."""

from __future__ import annotations

from typing import Any

from django.db import connection
from rest_framework.test import APIClient

from carts.models import Cart
from carts.tokens import hash_token
from checkout.confirm import confirm_checkout
from checkout.services import start_checkout
from inventory.models import StockLevel
from orders.models import Order
from tests.support.addresses import ADDRESS, BILLING
from tests.support.factories import CartFactory, CartItemFactory
from tests.support.shopper import API

TOKEN = "shopper-secret-token"


def cart_in_checkout(
    *lines: tuple[StockLevel, int],
    payment_method: str = "card",
    shipping_address: dict[str, Any] | None = ADDRESS,
    billing_address: dict[str, Any] | None = BILLING,
    customer=None,
    token: str = TOKEN,
) -> Cart:
    """A cart holding ``(stock, quantity)`` lines, with address and payment method saved,
    whose checkout was started by ``checkout.services.start_checkout`` (its lines
    reserved)."""
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


def paid_order(*lines: tuple[StockLevel, int]) -> Order:
    """An order written by the real confirm with the dummy gateway (``card``)."""
    cart = cart_in_checkout(*lines)
    result = confirm_checkout(
        cart_id=cart.id, idempotency_key=f"key-{cart.id}", fingerprint="f" * 64, actor="test"
    )
    assert result.order is not None
    return result.order


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
