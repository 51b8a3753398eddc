"""The counters of SPEC §10 move exactly as the shop's flows say, and only for what
committed. Read from this process's registry before and after each flow."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from checkout.cleanup import abandon_expired_checkouts
from checkout.orphans import release_orphaned_reservations
from inventory import services
from inventory.errors import ExtensionLimitReached, ReservationNotActive
from inventory.models import Reservation
from inventory.services import ReservationLine
from orders.services import cancel_order
from tests.observability.metrics_helpers import Moves, Shopper
from tests.support import cart_in_checkout, lapsed_reservation, paid_order, stocked

pytestmark = pytest.mark.django_db

R = "stock_reservations_total"


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Runs the on-commit callbacks (where the services count) as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_checkout_start_counts_a_reservation_a_checkout_and_the_ttls(committed):
    # Plenty left after the holds: not scarcity holds (SPEC §15), the start TTL applies.
    a, b = stocked(on_hand=50), stocked(on_hand=50)
    shopper = Shopper()
    shopper.add(a.product.sku, 2)
    shopper.add(b.product.sku, 1)
    moved = Moves(
        (R, {"outcome": "success"}),
        ("carts_checkout_total", {}),
        ("stock_reservations_ttl_seconds_count", {}),
        ("stock_reservations_ttl_seconds_sum", {}),
        ("stock_reservations_ttl_seconds_bucket", {"le": "300.0"}),
        ("stock_validations_total", {"outcome": "ok"}),
    )
    with committed():
        assert shopper.start().status_code == 201
    assert moved.deltas() == {
        "stock_reservations_total{outcome=success}": 1,  # one all-or-nothing attempt
        "carts_checkout_total": 1,
        "stock_reservations_ttl_seconds_count": 2,  # one TTL per reservation
        "stock_reservations_ttl_seconds_sum": 600,
        "stock_reservations_ttl_seconds_bucket{le=300.0}": 2,
        "stock_validations_total{outcome=ok}": 1,
    }

    # A second start of the same checkout reserves nothing again.
    moved = Moves((R, {"outcome": "success"}), ("carts_checkout_total", {}))
    with committed():
        assert shopper.start().status_code == 200
    assert set(moved.deltas().values()) == {0}


def test_short_stock_counts_a_failed_reservation_and_each_short_line(committed):
    a, b, c = stocked(on_hand=1), stocked(on_hand=0), stocked(on_hand=9)
    shopper = Shopper()
    for stock in (a, b, c):
        shopper.add(stock.product.sku, 2)
    moved = Moves(
        (R, {"outcome": "insufficient_stock"}),
        (R, {"outcome": "success"}),
        ("stock_out_of_stock_total", {}),
        ("stock_validations_total", {"outcome": "insufficient"}),
        ("carts_checkout_total", {}),
    )
    with committed():
        response = shopper.start()
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "INSUFFICIENT_STOCK"
    assert moved.deltas() == {
        "stock_reservations_total{outcome=insufficient_stock}": 1,
        "stock_reservations_total{outcome=success}": 0,
        "stock_out_of_stock_total": 2,
        "stock_validations_total{outcome=insufficient}": 1,
        "carts_checkout_total": 0,
    }


def test_activity_near_expiry_counts_an_extension_per_reservation(committed):
    a, b = stocked(), stocked()
    shopper = Shopper()
    shopper.add(a.product.sku)
    shopper.add(b.product.sku)
    assert shopper.start().status_code == 201
    moved = Moves(
        ("stock_reservations_extended_total", {"outcome": "success"}),
        ("stock_reservations_ttl_seconds_count", {}),
    )
    with time_machine.travel(timezone.now() + timedelta(seconds=200)), committed():
        assert shopper.update(current_step=2).status_code == 200
    assert moved.deltas() == {
        "stock_reservations_extended_total{outcome=success}": 2,
        "stock_reservations_ttl_seconds_count": 2,
    }


def test_refused_extensions_are_counted_by_reason(committed):
    stock = stocked()
    lapsed = lapsed_reservation(stock)
    [fresh] = services.reserve(
        lines=[ReservationLine(stock.product_id, stock.warehouse_id, 1)], ttl_seconds=300
    )
    moved = Moves(
        ("stock_reservations_extended_total", {"outcome": "not_active"}),
        ("stock_reservations_extended_total", {"outcome": "limit_reached"}),
    )
    later = timezone.now() + timedelta(seconds=600)
    with committed(), pytest.raises(ReservationNotActive):
        services.extend(reservation_ids=[lapsed.id], expires_at=later)
    with committed(), pytest.raises(ExtensionLimitReached):
        services.extend(reservation_ids=[fresh.id], expires_at=later, max_extensions=0)
    assert moved.deltas() == {
        "stock_reservations_extended_total{outcome=not_active}": 1,
        "stock_reservations_extended_total{outcome=limit_reached}": 1,
    }


def test_paid_checkout_counts_payment_completion_and_confirmed_reservations(committed):
    a, b = stocked(), stocked()
    shopper = Shopper()
    shopper.add(a.product.sku, 2)
    shopper.add(b.product.sku, 1)
    assert shopper.start().status_code == 201
    shopper.ready_to_pay("card")
    moved = Moves(
        ("payments_total", {"outcome": "captured"}),
        ("carts_completed_total", {}),
        ("reservations_confirmed_total", {}),
        ("stock_validations_total", {"outcome": "ok"}),
        ("checkout_confirm_stock_failures_total", {}),
    )
    with committed():
        response = shopper.confirm()
    assert response.status_code == 201, response.content
    assert moved.deltas() == {
        "payments_total{outcome=captured}": 1,
        "carts_completed_total": 1,
        "reservations_confirmed_total": 2,
        "stock_validations_total{outcome=ok}": 0,
        "checkout_confirm_stock_failures_total": 0,
    }


def test_declined_payment_counts_and_releases_for_payment_failure(committed):
    a, b = stocked(), stocked()
    shopper = Shopper()
    shopper.add(a.product.sku)
    shopper.add(b.product.sku)
    assert shopper.start().status_code == 201
    shopper.ready_to_pay("test_decline")
    moved = Moves(
        ("payments_total", {"outcome": "declined"}),
        ("reservations_released_total", {"reason": "payment_failed"}),
        ("carts_completed_total", {}),
    )
    with committed():
        assert shopper.confirm().status_code == 402
    assert moved.deltas() == {
        "payments_total{outcome=declined}": 1,
        "reservations_released_total{reason=payment_failed}": 2,
        "carts_completed_total": 0,
    }


def test_cancelled_checkout_counts_released_reservations(committed):
    stock = stocked()
    shopper = Shopper()
    shopper.add(stock.product.sku, 3)
    assert shopper.start().status_code == 201
    moved = Moves(("reservations_released_total", {"reason": "checkout_cancelled"}))
    with committed():
        assert shopper.cancel().status_code == 200
    assert moved.deltas() == {"reservations_released_total{reason=checkout_cancelled}": 1}


def test_stock_gone_at_confirm_counts_a_payment_with_stock_issue(committed, settings):
    settings.ENABLE_PRE_RESERVATION = False  # start validates only; confirm reserves
    stock = stocked(on_hand=1)
    first, second = Shopper(), Shopper()
    for shopper in (first, second):
        shopper.add(stock.product.sku)
        assert shopper.start().status_code == 201
        shopper.ready_to_pay()
    assert first.confirm().status_code == 201
    moved = Moves(
        ("checkout_confirm_stock_failures_total", {}),
        ("payments_total", {"outcome": "captured"}),
    )
    with committed():
        response = second.confirm()
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "INSUFFICIENT_STOCK"
    assert moved.deltas() == {
        "checkout_confirm_stock_failures_total": 1,
        "payments_total{outcome=captured}": 0,
    }


def test_sweepers_count_expired_reservations_and_abandoned_checkouts(committed):
    stock = stocked()
    cart = cart_in_checkout((stock, 2))
    lapsed_reservation(stock)
    moved = Moves(
        ("reservations_expired_total", {}),
        ("carts_abandoned_total", {"reason": "expired"}),
    )
    with time_machine.travel(timezone.now() + timedelta(seconds=301)), committed():
        assert abandon_expired_checkouts(batch_size=10).done == 1
        assert services.expire_due(batch_size=10) == 1  # the internal one
    assert moved.deltas() == {
        "reservations_expired_total": 2,  # the cart's (expired while abandoning) + internal
        "carts_abandoned_total{reason=expired}": 1,
    }
    assert Reservation.objects.filter(cart=cart, status="expired").count() == 1


def test_orphan_sweeper_counts_orphans(committed):
    stock = stocked()
    cart = cart_in_checkout((stock, 1))
    # A bug upstream left the cart active with its reservation still pending.
    type(cart).objects.filter(id=cart.id).update(status="active")
    moved = Moves(
        ("reservations_orphaned_total", {}),
        ("reservations_released_total", {"reason": "orphaned"}),
    )
    with committed():
        assert release_orphaned_reservations(batch_size=10).done == 1
    assert moved.deltas() == {
        "reservations_orphaned_total": 1,
        "reservations_released_total{reason=orphaned}": 1,
    }


def test_cancelled_order_counts_restocked_reservations(committed):
    a, b = stocked(), stocked()
    order = paid_order((a, 1), (b, 2))
    moved = Moves(("reservations_released_total", {"reason": "order_cancelled"}))
    with committed():
        cancel_order(order_id=order.id, actor="test", by_staff=True)
    assert moved.deltas() == {"reservations_released_total{reason=order_cancelled}": 2}


def test_rolled_back_reservation_moves_no_metric(committed):
    stock = stocked()
    moved = Moves(
        (R, {"outcome": "success"}),
        ("stock_reservations_ttl_seconds_count", {}),
        ("reservations_released_total", {"reason": "api"}),
    )
    with committed(), pytest.raises(RuntimeError), transaction.atomic():
        [r] = services.reserve(
            lines=[ReservationLine(stock.product_id, stock.warehouse_id, 1)], ttl_seconds=60
        )
        services.release(reservation_ids=[r.id])
        raise RuntimeError("the caller failed after reserving")
    assert set(moved.deltas().values()) == {0}
    assert not Reservation.objects.filter(product=stock.product).exists()
