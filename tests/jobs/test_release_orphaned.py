"""The release-orphaned-reservations job: pending reservations of carts that are not in
checkout, and not linked to an order, are released with reason ``orphaned``."""

from decimal import Decimal

import pytest
from django.utils import timezone

from carts.models import CartStatus
from checkout import orphans as cleanup
from inventory import services
from inventory.models import ReleaseReason, Reservation, ReservationStatus
from payments.models import Payment, PaymentStatus
from tests.support import (
    assert_stock_invariants,
    cart_with_reservations,
    checkout_cart,
    ended_once,
    metric,
    stocks,
)
from tests.support.factories import OrderFactory

pytestmark = pytest.mark.django_db


def pending_of(cart) -> list[int]:
    return list(
        Reservation.objects.filter(cart=cart, status=ReservationStatus.PENDING).values_list(
            "id", flat=True
        )
    )


def test_pending_reservations_of_carts_out_of_checkout_are_released_as_orphaned(
    django_capture_on_commit_callbacks,
):
    rows = stocks(3, on_hand=10)
    active = cart_with_reservations(rows[:2], status=CartStatus.ACTIVE, quantity=2)
    abandoned = cart_with_reservations(rows[2:], status=CartStatus.ABANDONED, quantity=3)
    orphans = pending_of(active) + pending_of(abandoned)
    orphaned_before = metric("reservations_orphaned_total")
    released_before = metric("reservations_released_total", reason="orphaned")

    with django_capture_on_commit_callbacks(execute=True):
        run = cleanup.release_orphaned_reservations(batch_size=10, actor="test-sweeper")

    assert (run.done, run.errors, run.more) == (3, 0, False)
    assert (
        list(Reservation.objects.filter(id__in=orphans).values_list("status", "release_reason"))
        == [(ReservationStatus.RELEASED, ReleaseReason.ORPHANED)] * 3
    )
    assert [s.reserved for s in type(rows[0]).objects.filter(id__in=[r.id for r in rows])] == [
        0,
        0,
        0,
    ]
    assert ended_once(orphans, "released")
    assert metric("reservations_orphaned_total") - orphaned_before == 3
    assert metric("reservations_released_total", reason="orphaned") - released_before == 3
    assert_stock_invariants()


def test_leftover_pending_reservation_of_a_completed_cart_with_order_is_orphaned():
    rows = stocks(1)
    cart = cart_with_reservations(rows, status=CartStatus.COMPLETED)
    OrderFactory(cart=cart)

    assert cleanup.release_orphaned_reservations(batch_size=10).done == 1
    assert pending_of(cart) == []
    assert_stock_invariants()


def test_reservations_that_are_not_orphans_are_left_alone():
    rows = stocks(4)
    in_checkout = checkout_cart(rows[:1])
    # Without a cart: an internal API client's reservation, ended by its TTL.
    [api_made] = services.reserve(
        lines=[services.ReservationLine(rows[1].product_id, rows[1].warehouse_id, 1)],
        ttl_seconds=600,
    )
    # Linked to an order already.
    linked = cart_with_reservations(rows[2:3], status=CartStatus.COMPLETED)
    Reservation.objects.filter(cart=linked).update(order=OrderFactory(cart=linked))
    # A captured payment still waiting for its order: reconciliation needs these.
    paid = cart_with_reservations(rows[3:], status=CartStatus.ACTIVE)
    Payment.objects.create(
        cart=paid,
        gateway="dummy",
        method="card",
        amount=Decimal("10.00"),
        currency="USD",
        status=PaymentStatus.CAPTURED,
        captured_at=timezone.now(),
    )
    assert cleanup.orphaned_reservations().count() == 0

    run = cleanup.release_orphaned_reservations(batch_size=10)

    assert (run.done, run.batches) == (0, 0)
    assert Reservation.objects.filter(status=ReservationStatus.PENDING).count() == 4
    assert pending_of(in_checkout) and pending_of(paid) and pending_of(linked)
    api_made.refresh_from_db()
    assert api_made.status == ReservationStatus.PENDING


def test_second_run_releases_nothing(django_capture_on_commit_callbacks):
    rows = stocks(2)
    cart_with_reservations(rows, status=CartStatus.ACTIVE)
    before = metric("reservations_orphaned_total")

    with django_capture_on_commit_callbacks(execute=True):
        assert cleanup.release_orphaned_reservations(batch_size=10).done == 2
        assert cleanup.release_orphaned_reservations(batch_size=10).done == 0
    assert metric("reservations_orphaned_total") - before == 2


def test_orphans_are_taken_a_batch_of_carts_at_a_time():
    carts = [cart_with_reservations(stocks(2), status=CartStatus.ACTIVE) for _ in range(5)]

    run = cleanup.release_orphaned_reservations(batch_size=2, max_batches=2)
    assert (run.done, run.batches, run.more) == (8, 2, True)
    run = cleanup.release_orphaned_reservations(batch_size=2, max_batches=2)
    assert (run.done, run.batches, run.more) == (2, 1, False)
    assert all(pending_of(cart) == [] for cart in carts)
    assert_stock_invariants()
