"""A small shop put in known states through the real services, shared by the admin and
observability tests: carts in checkout, a paid order, a lapsed reservation, a captured
payment whose order was never written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import time_machine
from django.utils import timezone

from carts.models import Cart
from checkout.services import abandon_checkout
from inventory import services
from inventory.models import Reservation, StockLevel
from inventory.services import ReservationLine
from orders.models import Order
from payments.models import Payment, PaymentStatus
from tests.support.checkout import cart_in_checkout, paid_order
from tests.support.factories import WarehouseFactory
from tests.support.stock import stocked


def lapsed_reservation(stock: StockLevel, quantity: int = 1) -> Reservation:
    """A pending reservation (no cart, as the internal API makes them) whose expiry
    passed two minutes ago and that nobody has expired yet."""
    with time_machine.travel(timezone.now() - timedelta(seconds=180)):
        [reservation] = services.reserve(
            lines=[ReservationLine(stock.product_id, stock.warehouse_id, quantity)],
            ttl_seconds=60,
        )
    return reservation


def captured_without_order(cart: Cart, *, amount: str = "10.00") -> Payment:
    """The recovery record a confirm leaves when the order could not be written after
    the capture (SPEC §7.4), captured long enough ago for reconciliation to take it."""
    payment = Payment.objects.create(
        cart=cart,
        gateway="dummy",
        method="card",
        amount=Decimal(amount),
        currency=cart.currency,
        status=PaymentStatus.CAPTURED,
        authorization_id="auth-test",
        payment_id="pay-test",
        attempts=1,
        error_code="ORDER_NOT_WRITTEN",
    )
    ago = timezone.now() - timedelta(minutes=10)
    Payment.objects.filter(id=payment.id).update(created_at=ago, captured_at=ago, updated_at=ago)
    payment.refresh_from_db()
    return payment


@dataclass
class Shop:
    stock_a: StockLevel
    stock_b: StockLevel
    stock_east: StockLevel
    checkout_cart: Cart
    abandoned_cart: Cart
    order: Order
    lapsed: Reservation
    internal: Reservation
    unpaid_cart: Cart
    captured: Payment

    def pending_of(self, cart: Cart) -> list[Reservation]:
        return list(Reservation.objects.filter(cart=cart, status="pending").order_by("id"))


def build_shop() -> Shop:
    east = WarehouseFactory(code="east")
    stock_a = stocked(on_hand=20, sku="ALPHA-1")
    stock_b = stocked(on_hand=20, sku="BRAVO-2")
    stock_east = stocked(on_hand=5, sku="EAST-3", warehouse=east)
    checkout_cart = cart_in_checkout((stock_a, 2), (stock_b, 1))
    abandoned_cart = cart_in_checkout((stock_a, 1))
    abandon_checkout(cart_id=abandoned_cart.id, reason="stale", actor="test")
    order = paid_order((stock_a, 3), (stock_east, 1))
    lapsed = lapsed_reservation(stock_b, 2)
    [internal] = services.reserve(
        lines=[ReservationLine(stock_east.product_id, stock_east.warehouse_id, 1)],
        ttl_seconds=600,
    )
    unpaid_cart = cart_in_checkout((stock_b, 1))
    captured = captured_without_order(unpaid_cart)
    for cart in (checkout_cart, abandoned_cart, unpaid_cart):
        cart.refresh_from_db()
    return Shop(
        stock_a=stock_a,
        stock_b=stock_b,
        stock_east=stock_east,
        checkout_cart=checkout_cart,
        abandoned_cart=abandoned_cart,
        order=order,
        lapsed=lapsed,
        internal=internal,
        unpaid_cart=unpaid_cart,
        captured=captured,
    )
