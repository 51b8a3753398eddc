"""The abandon-expired, abandon-stale and reconcile-payments jobs: their effect on carts,
reservations, stock and payments."""

import pytest
from django.conf import settings

from carts.models import Cart, CartStatus
from checkout import cleanup
from checkout.tasks import abandon_expired_checkouts as abandon_expired_task
from inventory.models import ReleaseReason, Reservation, ReservationStatus, StockLevel
from orders.models import Order
from payments.models import PaymentStatus
from tests.support import (
    assert_stock_invariants,
    checkout_cart,
    lapse,
    make_stale,
    metric,
    paid_cart_without_order,
    payment,
    stocks,
)

pytestmark = pytest.mark.django_db


def statuses(cart: Cart) -> set[tuple[str, str]]:
    return set(Reservation.objects.filter(cart=cart).values_list("status", "release_reason"))


def test_expired_checkout_is_abandoned_and_its_stock_returned(django_capture_on_commit_callbacks):
    rows = stocks(2, on_hand=10)
    cart = checkout_cart(rows, quantity=3)
    live = checkout_cart(stocks(1))
    lapse(carts=[cart])
    before = metric("carts_abandoned_total", reason="expired")

    with django_capture_on_commit_callbacks(execute=True):
        run = cleanup.abandon_expired_checkouts(batch_size=10, actor="test-sweeper")

    assert (run.done, run.skipped, run.errors) == (1, 0, 0)
    cart.refresh_from_db()
    assert (cart.status, cart.expires_at) == (CartStatus.ABANDONED, None)
    assert statuses(cart) == {(ReservationStatus.EXPIRED, "")}
    assert list(
        StockLevel.objects.filter(id__in=[r.id for r in rows]).values_list("reserved", flat=True)
    ) == [0, 0]
    assert metric("carts_abandoned_total", reason="expired") - before == 1
    live.refresh_from_db()
    assert live.status == CartStatus.CHECKOUT
    assert_stock_invariants()


def test_stale_checkout_is_abandoned_even_before_it_expires(django_capture_on_commit_callbacks):
    cart = checkout_cart(stocks(2))
    make_stale(cart)
    before = metric("carts_abandoned_total", reason="stale")

    assert cleanup.abandon_expired_checkouts(batch_size=10).done == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert cleanup.abandon_stale_checkouts(batch_size=10).done == 1

    cart.refresh_from_db()
    assert cart.status == CartStatus.ABANDONED
    assert statuses(cart) == {(ReservationStatus.RELEASED, ReleaseReason.CHECKOUT_ABANDONED)}
    assert metric("carts_abandoned_total", reason="stale") - before == 1
    assert_stock_invariants()


@pytest.mark.parametrize(
    ("status", "age_seconds"),
    [
        (PaymentStatus.PENDING, 5),  # the shopper's confirm is paying right now
        (PaymentStatus.AUTHORIZED, 5),
        (PaymentStatus.CAPTURED, 3600),  # paid, the order is reconciliation's to write
    ],
)
def test_carts_with_a_payment_in_progress_are_not_abandoned(status, age_seconds):
    cart = checkout_cart(stocks(1))
    lapse(carts=[cart])
    make_stale(cart)
    payment(cart, status, age_seconds=age_seconds)

    assert cleanup.expired_checkouts().count() == 0
    assert cleanup.abandon_expired_checkouts(batch_size=10).done == 0
    assert cleanup.abandon_stale_checkouts(batch_size=10).done == 0
    cart.refresh_from_db()
    assert cart.status == CartStatus.CHECKOUT


def test_a_payment_interrupted_long_ago_does_not_keep_the_checkout_alive():
    cart = checkout_cart(stocks(1))
    lapse(carts=[cart])
    payment(cart, PaymentStatus.PENDING, age_seconds=settings.CHECKOUT_PAYMENT_TTL_SECONDS + 60)

    assert cleanup.abandon_expired_checkouts(batch_size=10).done == 1


def test_abandon_task_run_twice_abandons_once(broker, django_capture_on_commit_callbacks):
    carts = [checkout_cart(stocks(1)) for _ in range(3)]
    lapse(carts=carts)
    before = metric("carts_abandoned_total", reason="expired")

    with django_capture_on_commit_callbacks(execute=True):
        assert abandon_expired_task.apply().get()["done"] == 3
        assert abandon_expired_task.apply().get()["done"] == 0

    assert metric("carts_abandoned_total", reason="expired") - before == 3
    assert Cart.objects.filter(status=CartStatus.ABANDONED).count() == 3
    assert_stock_invariants()


def test_abandon_runs_in_bounded_batches():
    carts = [checkout_cart(stocks(1)) for _ in range(5)]
    lapse(carts=carts)

    run = cleanup.abandon_expired_checkouts(batch_size=2, max_batches=2)
    assert (run.done, run.batches, run.more) == (4, 2, True)
    run = cleanup.abandon_expired_checkouts(batch_size=2, max_batches=2)
    assert (run.done, run.batches, run.more) == (1, 1, False)


def test_reconcile_writes_the_order_of_a_captured_payment():
    cart, paid = paid_cart_without_order()
    assert cleanup.payments_to_reconcile().count() == 1

    run = cleanup.reconcile_payments(batch_size=10)

    assert (run.done, run.errors, run.more) == (1, 0, False)
    paid.refresh_from_db()
    cart.refresh_from_db()
    order = Order.objects.get(cart=cart)
    assert paid.order_id == order.id
    assert cart.status == CartStatus.COMPLETED
    assert statuses(cart) == {(ReservationStatus.CONFIRMED, "")}
    assert list(StockLevel.objects.order_by("id").values_list("on_hand", "reserved")) == [
        (3, 0),
        (3, 0),
    ]
    assert cleanup.reconcile_payments(batch_size=10).done == 0
    assert_stock_invariants()


def test_reconcile_flags_a_payment_it_cannot_finish_and_does_not_take_it_up_again():
    cart, paid = paid_cart_without_order(amount="999.00")

    assert cleanup.reconcile_payments(batch_size=10).done == 1
    assert cleanup.reconcile_payments(batch_size=10).done == 0

    paid.refresh_from_db()
    assert paid.needs_attention and paid.order_id is None
    assert cleanup.payments_to_reconcile().count() == 0
    # Still paid without an order: no cleanup job abandons the cart or frees its stock.
    lapse(carts=[cart])
    assert cleanup.abandon_expired_checkouts(batch_size=10).done == 0
