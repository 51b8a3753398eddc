"""The waitlist endpoints under concurrency, on PostgreSQL with real threads: shoppers
joining while units are freed never see a unit offered out of order, twice or left idle
while someone waits; one cart joining twice at once keeps one entry."""

from __future__ import annotations

import pytest

from inventory.models import Reservation, ReservationStatus, StockLevel, WaitlistEntry
from tests.support import (
    Shopper,
    assert_error,
    assert_stock_invariants,
    ensure_default_warehouse,
    run_concurrently,
    stocked,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _default_warehouse():
    ensure_default_warehouse()


def join(shopper: Shopper, sku: str, quantity: int = 1):
    body = {"sku": sku, "quantity": quantity}
    return shopper.call("post", f"carts/{shopper.cart_id}/waitlist/", body)


def test_joins_racing_a_checkout_cancel_are_served_in_order_and_leave_no_unit_idle():
    stock = stocked(on_hand=2)
    sku = stock.product.sku
    holder = Shopper()
    holder.cart_with((sku, 2))
    assert holder.start().status_code == 201
    shoppers = [Shopper() for _ in range(6)]
    for shopper in shoppers:
        shopper.create_cart()

    def work(i: int):
        if i == len(shoppers):
            return holder.cancel()
        return join(shoppers[i], sku)

    outcomes = run_concurrently(len(shoppers) + 1, work)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert outcomes[-1].status_code == 200
    for response in outcomes[:-1]:
        if response.status_code != 201:
            assert_error(response, 409, "STOCK_AVAILABLE")
    entries = list(WaitlistEntry.objects.order_by("id"))
    assert len(entries) == sum(1 for r in outcomes[:-1] if r.status_code == 201)
    statuses = [e.status for e in entries]
    # Offers went strictly in join order: no waiting entry is ahead of an offered one.
    offered = statuses.count("offered")
    assert statuses == ["offered"] * offered + ["waiting"] * (len(entries) - offered)
    assert offered <= 2
    for entry in entries[:offered]:
        held = Reservation.objects.filter(
            waitlist_entry=entry, status=ReservationStatus.PENDING
        ).values_list("quantity", "cart_id")
        assert list(held) == [(1, entry.cart_id)]
    stock.refresh_from_db()
    # While anyone waits, no unit is left free; the counter is what the queue wants.
    if offered < len(entries):
        assert stock.on_hand - stock.reserved == 0
    assert stock.waitlisted == len(entries) - offered
    assert_stock_invariants()


def test_one_cart_joining_twice_at_once_keeps_one_entry():
    stock = stocked(on_hand=0)
    shopper = Shopper()
    shopper.create_cart()

    outcomes = run_concurrently(2, lambda i: join(shopper, stock.product.sku, i + 1))

    assert [o.status_code for o in outcomes] == [201, 201], outcomes
    ids = {o.json()["id"] for o in outcomes}
    [entry] = WaitlistEntry.objects.all()
    assert ids == {entry.id}
    assert entry.quantity in (1, 2)
    assert StockLevel.objects.get(id=stock.id).waitlisted == entry.quantity
    assert_stock_invariants()
