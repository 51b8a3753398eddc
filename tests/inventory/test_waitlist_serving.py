"""Changes to a queue that let its head be served offer at once (SPEC §15: no entry waits
while its units are free): leaving the queue from its head, lowering a waiting entry's
quantity, and stock arriving in a warehouse the product had no row in yet."""

from __future__ import annotations

import pytest
from django.db import transaction

from carts.locks import lock_cart
from inventory import services, waitlist
from inventory.errors import InsufficientStock
from inventory.models import Product, StockLevel, WaitlistEntry, Warehouse
from inventory.repair import missed_offers
from tests.support import assert_stock_invariants, reserve, stocked
from tests.support.factories import CartFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


def join(cart, product: Product, quantity: int, warehouse: Warehouse | None = None):
    with transaction.atomic():
        lock_cart(cart.id)
        return waitlist.join(
            cart_id=cart.id, product=product, warehouse=warehouse, quantity=quantity, actor="t"
        )


def leave(entry: WaitlistEntry) -> WaitlistEntry:
    with transaction.atomic():
        lock_cart(entry.cart_id)
        return waitlist.leave(cart_id=entry.cart_id, entry_id=entry.id, actor="t")


def statuses(*entries: WaitlistEntry) -> list[str]:
    return [WaitlistEntry.objects.get(id=e.id).status for e in entries]


def test_leaving_from_the_head_of_the_queue_serves_the_entries_behind():
    stock = stocked(on_hand=5, sku="Q-1")
    first_hold = reserve(stock, 2)
    reserve(stock, 3)
    head = join(CartFactory(), stock.product, 5).entry
    behind = join(CartFactory(), stock.product, 1).entry
    services.release(reservation_ids=[first_hold.id])  # 2 free: the head (5) stops the queue
    assert statuses(head, behind) == ["waiting", "waiting"]
    assert missed_offers() == []

    left = leave(head)

    assert left.status == "cancelled"
    assert statuses(head, behind) == ["cancelled", "offered"]
    stock.refresh_from_db()
    assert (stock.reserved, stock.waitlisted) == (4, 0)
    assert_stock_invariants()


def test_a_smaller_quantity_at_the_head_of_the_queue_is_offered_at_once():
    stock = stocked(on_hand=5, sku="Q-2")
    first_hold = reserve(stock, 3)
    reserve(stock, 2)
    head = join(CartFactory(), stock.product, 5).entry
    behind = join(CartFactory(), stock.product, 1).entry
    services.release(reservation_ids=[first_hold.id])  # 3 free
    assert statuses(head, behind) == ["waiting", "waiting"]

    result = join(head.cart, stock.product, 3)  # 3 are free, 1 wanted behind: still short

    assert result.created is False
    assert statuses(head, behind) == ["offered", "waiting"]
    assert result.entry.status == "offered"
    assert missed_offers() == []
    assert_stock_invariants()


def test_a_new_stock_row_takes_the_products_waitlist_counter_and_its_stock_is_offered():
    stock = stocked(on_hand=2, sku="Q-3")
    reserve(stock, 2)
    entry = join(CartFactory(), stock.product, 2).entry
    east = WarehouseFactory(code="east")

    row = services.set_stock(product=stock.product, warehouse=east, on_hand=3)

    assert statuses(entry) == ["offered"]
    assert (row.on_hand, row.reserved, row.waitlisted) == (3, 2, 0)
    assert_stock_invariants()


def test_a_new_empty_stock_row_withholds_what_the_queue_wants():
    stock = stocked(on_hand=2, sku="Q-4")
    reserve(stock, 2)
    join(CartFactory(), stock.product, 3)
    east = WarehouseFactory(code="east")

    row = services.set_stock(product=stock.product, warehouse=east, on_hand=0)
    assert row.waitlisted == 3
    assert_stock_invariants()

    # 2 arrive in east: not enough for the entry (3), and not for anyone else either,
    # not even a line that names the new warehouse.
    services.set_stock(product=stock.product, warehouse=east, on_hand=2)
    with pytest.raises(InsufficientStock):
        services.reserve(
            lines=[services.ReservationLine(stock.product_id, east.id, 1)], ttl_seconds=60
        )
    assert list(StockLevel.objects.order_by("id").values_list("waitlisted", flat=True)) == [3, 3]
    assert_stock_invariants()
