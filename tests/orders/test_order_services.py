"""Order services: numbers, reservation confirmation that never fails a paid order and
is retried on the change to ``confirmed``, cancellation of every kind of reservation."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import transaction

from carts.locks import lock_cart
from checkout.confirm import confirm_checkout
from inventory import services as inventory
from inventory.models import ReleaseReason, ReservationStatus
from orders import services
from orders.errors import InvalidOrderStatus
from orders.models import OrderStatus
from tests.support import cart_in_checkout, numbers, stocked

pytestmark = pytest.mark.django_db


def hold_everything(stock) -> list:
    """Another shopper holds all the free stock of ``stock``."""
    stock.refresh_from_db()
    return inventory.reserve(
        lines=[inventory.ReservationLine(stock.product_id, stock.warehouse_id, stock.available)],
        ttl_seconds=300,
    )


def order_with_a_lost_reservation(stock, *, quantity: int):
    """An order whose only line has no reservation (it was lost) while another shopper
    holds all the stock, written through the order services as confirm does."""
    cart = cart_in_checkout((stock, quantity))
    inventory.release(
        reservation_ids=list(cart.reservations.values_list("id", flat=True)),
        reason=ReleaseReason.OPS,
    )
    other = hold_everything(stock)
    item = cart.items.select_related("product").get()
    with transaction.atomic():
        lock_cart(cart.id)
        order, items = services.create_order(
            cart=cart,
            lines=[
                services.OrderLine(
                    product_id=item.product_id,
                    warehouse_id=item.warehouse_id,
                    sku=item.product.sku,
                    name=item.product.name,
                    quantity=item.quantity,
                    unit_price=item.product.price,
                )
            ],
        )
        errors = services.confirm_order_reservations(order=order, items=items, actor="test")
    return order, errors, other


def test_order_numbers_come_from_the_sequence_and_increase():
    first, second = services.next_order_number(), services.next_order_number()
    assert re.fullmatch(r"ORD-\d+", first)
    assert int(second[4:]) == int(first[4:]) + 1


def test_unconfirmable_reservation_is_recorded_on_the_order_not_raised():
    stock = stocked(on_hand=3)

    order, errors, _ = order_with_a_lost_reservation(stock, quantity=2)

    assert [(e["sku"], e["code"], e["available"], e["requested"]) for e in errors] == [
        (stock.product.sku, "INSUFFICIENT_STOCK", 0, 2)
    ]
    order.refresh_from_db()
    assert order.metadata["reservation_confirmation_errors"] == errors
    assert order.total == Decimal("20.00")
    assert numbers(stock) == (3, 3)  # nothing deducted; the other shopper's hold


def test_change_to_confirmed_retries_the_failed_confirmation():
    stock = stocked(on_hand=3)
    order, _, other = order_with_a_lost_reservation(stock, quantity=2)
    inventory.release(reservation_ids=[r.id for r in other], reason=ReleaseReason.API)

    services.change_order_status(order_id=order.id, status=OrderStatus.CONFIRMED, actor="staff")

    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    assert "reservation_confirmation_errors" not in order.metadata
    assert "reservation_confirmation_resolved_at" in order.metadata
    [reservation] = order.items.get().reservations
    assert reservation.status == ReservationStatus.CONFIRMED
    assert reservation.order_id == order.id
    assert numbers(stock) == (1, 0)


def test_change_to_confirmed_keeps_the_errors_while_stock_is_still_short():
    stock = stocked(on_hand=3)
    order, _, _ = order_with_a_lost_reservation(stock, quantity=2)

    services.change_order_status(order_id=order.id, status=OrderStatus.CONFIRMED, actor="staff")

    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    assert len(order.metadata["reservation_confirmation_errors"]) == 1
    assert numbers(stock) == (3, 3)


def test_confirming_a_healthy_order_again_changes_no_stock():
    stock = stocked(on_hand=5)
    cart = cart_in_checkout((stock, 2))
    order = confirm_checkout(cart_id=cart.id).order
    assert numbers(stock) == (3, 0)

    services.change_order_status(order_id=order.id, status=OrderStatus.CONFIRMED, actor="staff")

    assert numbers(stock) == (3, 0)
    order.refresh_from_db()
    assert order.metadata == {}


def test_cancel_releases_pending_and_restocks_confirmed_reservations():
    stock = stocked(on_hand=5)
    cart = cart_in_checkout((stock, 2))
    order = confirm_checkout(cart_id=cart.id).order
    # A second line's reservation still pending for the order (e.g. confirmation pending).
    extra = stocked(on_hand=4)
    [pending] = inventory.reserve(
        lines=[inventory.ReservationLine(extra.product_id, extra.warehouse_id, 1)],
        ttl_seconds=300,
        cart_id=cart.id,
    )
    pending.order_id = order.id
    pending.save(update_fields=["order_id"])
    assert numbers(extra) == (4, 1)

    services.cancel_order(order_id=order.id, actor="staff", by_staff=True)

    assert numbers(stock) == (5, 0)
    assert numbers(extra) == (4, 0)


def test_shopper_may_cancel_only_a_pending_order():
    cart = cart_in_checkout((stocked(), 1))
    order = confirm_checkout(cart_id=cart.id).order
    services.change_order_status(order_id=order.id, status=OrderStatus.CONFIRMED, actor="staff")
    with pytest.raises(InvalidOrderStatus):
        services.cancel_order(order_id=order.id, actor="shopper", by_staff=False)
