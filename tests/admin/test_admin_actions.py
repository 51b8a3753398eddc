"""Every admin action changes the shop through its service, keeps the stock numbers
exact, records the staff member in the reservation event log and says what it did."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from prometheus_client import REGISTRY

from carts.models import Cart
from inventory.models import Reservation, ReservationEvent
from orders.models import Order
from payments.models import Payment
from tests.support import numbers

pytestmark = pytest.mark.django_db


# Actions that first show a confirmation page (what they will do, to which rows).
CONFIRMED_ACTIONS = {
    "release_selected",
    "expire_now",
    "cancel_orders",
    "cancel_checkout",
    "abandon_checkout",
}


def act(client, model, action: str, objects) -> list[str]:
    """Runs an admin action on ``objects`` (through its confirmation page, if it has one)
    and returns the messages it left."""
    meta = model._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    data = {"action": action, "_selected_action": [str(o.pk) for o in objects]}
    if action in CONFIRMED_ACTIONS:
        page = client.post(url, data)
        assert page.status_code == 200, page.content[:500]
        assert "admin/shop_confirm_action.html" in [t.name for t in page.templates]
        data["confirmed"] = "yes"
    response = client.post(url, data, follow=True)
    assert response.redirect_chain == [(url, 302)], response.content[:500]
    return [str(m) for m in response.context["messages"]]


def status_of(obj) -> str:
    obj.refresh_from_db()
    return obj.status


def test_release_frees_pending_reservations_and_skips_confirmed(staff_browser, shop):
    held = shop.pending_of(shop.checkout_cart)
    sold = shop.order.items.first().reservations.first()
    before_a, before_b = numbers(shop.stock_a), numbers(shop.stock_b)

    said = act(staff_browser, Reservation, "release_selected", [*held, sold])

    assert [status_of(r) for r in held] == ["released", "released"]
    assert {r.release_reason for r in held} == {"staff"}
    assert status_of(sold) == "confirmed"
    assert numbers(shop.stock_a) == (before_a[0], before_a[1] - 2)
    assert numbers(shop.stock_b) == (before_b[0], before_b[1] - 1)
    events = ReservationEvent.objects.filter(reservation__in=held, kind="released")
    assert {(e.actor, e.reason) for e in events} == {("admin:ops-admin", "staff")}
    assert said[0] == "Released 2 reservation(s)."
    assert "Skipped 1 confirmed reservation(s)" in said[1]


def test_expire_now_ends_lapsed_reservations_only(staff_browser, shop):
    before = numbers(shop.stock_b)
    said = act(staff_browser, Reservation, "expire_now", [shop.lapsed, shop.internal])
    assert status_of(shop.lapsed) == "expired"
    assert status_of(shop.internal) == "pending"
    assert numbers(shop.stock_b) == (before[0], before[1] - 2)
    assert ReservationEvent.objects.get(reservation=shop.lapsed, kind="expired").actor == (
        "admin:ops-admin"
    )
    assert said[0] == "Expired 1 reservation(s)."
    assert "1 pending reservation(s) have not reached their expiry" in said[1]


def test_run_cleanup_runs_every_job_whatever_is_selected(staff_browser, shop):
    # Past the checkout TTL: both carts in checkout lapse; one of them has a captured
    # payment, which reconciliation turns into an order first.
    with time_machine.travel(timezone.now() + timedelta(seconds=301)):
        said = act(staff_browser, Reservation, "run_cleanup_now", [shop.internal])

    assert status_of(shop.lapsed) == "expired"
    shop.captured.refresh_from_db()
    assert shop.captured.order is not None
    assert status_of(shop.unpaid_cart) == "completed"
    assert status_of(shop.checkout_cart) == "abandoned"
    assert [status_of(r) for r in shop.pending_of(shop.checkout_cart)] == []
    assert Reservation.objects.filter(status="pending").count() == 1  # the internal one
    assert said[0].startswith("Cleanup done — reconcile_payments: 1; abandon_expired_checkouts: 1;")


def test_cancel_checkout_releases_and_returns_cart_to_active(staff_browser, shop):
    held = shop.pending_of(shop.checkout_cart)
    before = numbers(shop.stock_a)
    said = act(
        staff_browser,
        Cart,
        "cancel_checkout",
        [shop.checkout_cart, shop.order.cart, shop.unpaid_cart],
    )
    assert status_of(shop.checkout_cart) == "active"
    assert [(status_of(r), r.release_reason) for r in held] == [
        ("released", "checkout_cancelled"),
        ("released", "checkout_cancelled"),
    ]
    assert numbers(shop.stock_a) == (before[0], before[1] - 2)
    # Completed, and paid-but-no-order (reconciliation needs its reservations): untouched.
    assert status_of(shop.order.cart) == "completed"
    assert status_of(shop.unpaid_cart) == "checkout"
    assert shop.pending_of(shop.unpaid_cart)
    assert said[0] == "Cancelled the checkout of 1 cart(s)."
    assert said[1].startswith("Left 2 cart(s) alone")


def test_abandon_checkout_releases_and_counts_a_staff_abandon(
    staff_browser, shop, django_capture_on_commit_callbacks
):
    held = shop.pending_of(shop.checkout_cart)
    sample = ("carts_abandoned_total", {"reason": "staff"})
    before = REGISTRY.get_sample_value(*sample) or 0
    with django_capture_on_commit_callbacks(execute=True):
        said = act(staff_browser, Cart, "abandon_checkout", [shop.checkout_cart])
    assert status_of(shop.checkout_cart) == "abandoned"
    assert {status_of(r) for r in held} == {"released"}
    assert {r.release_reason for r in held} == {"checkout_abandoned"}
    assert REGISTRY.get_sample_value(*sample) == before + 1
    assert said == ["Abandoned 1 cart(s)."]


def test_cancel_order_restocks_through_the_orders_service(staff_browser, shop):
    before_a, before_east = numbers(shop.stock_a), numbers(shop.stock_east)
    said = act(staff_browser, Order, "cancel_orders", [shop.order])
    assert status_of(shop.order) == "cancelled"
    assert numbers(shop.stock_a) == (before_a[0] + 3, before_a[1])
    assert numbers(shop.stock_east) == (before_east[0] + 1, before_east[1])
    reservations = Reservation.objects.filter(order=shop.order)
    assert {(r.status, r.release_reason) for r in reservations} == {("released", "order_cancelled")}
    assert said == [f"Cancelled 1 order(s): {shop.order.number}."]

    # A second cancel is refused by the service and says so; stock does not move again.
    said = act(staff_browser, Order, "cancel_orders", [shop.order])
    assert said[0].startswith(f"Not cancelled: {shop.order.number}:")
    assert numbers(shop.stock_a) == (before_a[0] + 3, before_a[1])


def test_reconcile_now_writes_the_order_of_a_captured_payment(staff_browser, shop):
    said = act(staff_browser, Payment, "reconcile_now", [shop.captured])
    shop.captured.refresh_from_db()
    assert shop.captured.order is not None
    assert shop.captured.order.cart_id == shop.unpaid_cart.id
    assert status_of(shop.unpaid_cart) == "completed"
    assert said[0].startswith("Reconciliation handled 1 payment(s)")


def test_view_only_staff_cannot_run_actions(viewer_browser, shop):
    held = shop.pending_of(shop.checkout_cart)
    response = viewer_browser.post(
        reverse("admin:inventory_reservation_changelist"),
        {"action": "release_selected", "_selected_action": [str(r.pk) for r in held]},
    )
    assert response.status_code == 200  # the list again; the action is unknown to them
    assert {status_of(r) for r in held} == {"pending"}
    response = viewer_browser.post(
        reverse("admin:orders_order_changelist"),
        {"action": "cancel_orders", "_selected_action": [str(shop.order.pk)]},
    )
    assert status_of(shop.order) == "pending"
