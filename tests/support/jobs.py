"""Helpers for the cleanup job tests: real carts in checkout (through the checkout
service), orphaned reservations, lapsing them, and captured payments without an order
(sweepers run side by side with ``tests.support.threads``)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from prometheus_client import REGISTRY

from carts.models import Cart
from checkout.services import start_checkout
from inventory import services
from inventory.models import Reservation, ReservationEvent, ReservationStatus, StockLevel
from payments.models import Payment, PaymentStatus
from tests.support.addresses import ADDRESS
from tests.support.factories import CartFactory, CartItemFactory
from tests.support.stock import stocks


def checkout_cart(stocks: list[StockLevel], quantity: int = 1, **cart_fields) -> Cart:
    """A cart with one line per stock row, in checkout with its reservations pending."""
    cart = CartFactory(**cart_fields)
    for stock in stocks:
        CartItemFactory(
            cart=cart, product=stock.product, warehouse=stock.warehouse, quantity=quantity
        )
    cart, _ = start_checkout(cart_id=cart.id, actor="test")
    return cart


def cart_with_reservations(
    stocks: list[StockLevel], *, status: str, quantity: int = 1, ttl: int = 300
) -> Cart:
    """A cart in ``status`` holding pending reservations: the state an orphan is in."""
    cart = CartFactory(status=status)
    services.reserve(
        lines=[services.ReservationLine(s.product_id, s.warehouse_id, quantity) for s in stocks],
        ttl_seconds=ttl,
        cart_id=cart.id,
    )
    return cart


def lapse(*, carts: list[Cart] = (), reservation_ids: list[int] = (), seconds: int = 5) -> None:
    """Moves expiry into the past (the carts' and their reservations' alike, as the
    checkout keeps them equal). Stock numbers are untouched: only time passes."""
    past = timezone.now() - timedelta(seconds=seconds)
    cart_ids = [c.id for c in carts]
    Cart.objects.filter(id__in=cart_ids).update(expires_at=past)
    Reservation.objects.filter(cart_id__in=cart_ids, status=ReservationStatus.PENDING).update(
        expires_at=past
    )
    Reservation.objects.filter(id__in=list(reservation_ids)).update(expires_at=past)


def lapsed_reservations(stocks: list[StockLevel], *, per_stock: int = 1) -> list[int]:
    """``per_stock`` cart-less pending reservations of 1 on each stock row, lapsed."""
    ids = []
    for stock in stocks:
        for _ in range(per_stock):
            [r] = services.reserve(
                lines=[services.ReservationLine(stock.product_id, stock.warehouse_id, 1)],
                ttl_seconds=60,
            )
            ids.append(r.id)
    lapse(reservation_ids=ids)
    return ids


def ended_once(reservation_ids: list[int], kind: str) -> bool:
    """Each reservation has exactly one ``kind`` event (never ended twice)."""
    counts = {
        rid: ReservationEvent.objects.filter(reservation_id=rid, kind=kind).count()
        for rid in reservation_ids
    }
    return all(count == 1 for count in counts.values())


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def queued_tasks(client) -> list[str]:
    """Names of the tasks waiting in the default queue."""
    import json

    return [json.loads(raw)["headers"]["task"] for raw in client.lrange("celery", 0, -1)]


def make_stale(cart: Cart) -> None:
    started = timezone.now() - timedelta(seconds=settings.CHECKOUT_ABANDON_AFTER_SECONDS + 10)
    Cart.objects.filter(id=cart.id).update(checkout_started_at=started)


def payment(cart: Cart, status: str, *, age_seconds: int = 0, amount: str = "10.00") -> Payment:
    at = timezone.now() - timedelta(seconds=age_seconds)
    p = Payment.objects.create(
        cart=cart,
        gateway="dummy",
        method="card",
        amount=Decimal(amount),
        currency="USD",
        status=status,
        captured_at=at if status == PaymentStatus.CAPTURED else None,
    )
    Payment.objects.filter(id=p.id).update(created_at=at, updated_at=at)
    return p


def paid_cart_without_order(*, amount: str | None = None) -> tuple[Cart, Payment]:
    """What a confirm leaves when the order could not be written after the capture."""
    rows = stocks(2, on_hand=5)
    cart = checkout_cart(rows, quantity=2)
    Cart.objects.filter(id=cart.id).update(shipping_address=ADDRESS, payment_method="card")
    total = sum(row.product.price * 2 for row in rows)
    return cart, payment(cart, PaymentStatus.CAPTURED, age_seconds=120, amount=amount or total)
