"""Several warehouses under real concurrency: threads, each with its own PostgreSQL
connection, lined up on a barrier. Carts with several lines, each split over three
warehouses and added in opposite orders, start, confirm and cancel at the same time. The
test settings give every connection a ``lock_timeout``, so a lock-order bug fails here
(an OperationalError, or PostgreSQL's deadlock error) instead of hanging; there must be
none, no row may be oversold, and every counter must be exact."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from carts.models import Cart, CartStatus
from checkout.confirm import confirm_checkout
from checkout.services import start_checkout
from inventory import catalog
from inventory.errors import InsufficientStock
from inventory.models import Reservation, ReservationStatus, StockLevel
from orders.models import Order
from orders.services import cancel_order
from tests.support import ADDRESS, assert_counters_exact, run_concurrently
from tests.support.factories import (
    CartFactory,
    CartItemFactory,
    ProductFactory,
    WarehouseFactory,
    default_warehouse,
)

pytestmark = pytest.mark.django_db(transaction=True)

PER_WAREHOUSE = 4
WAREHOUSES = 3
LINE = 3  # each cart wants 3 of every product: 12 units per product serve exactly 4 carts
CARTS = 12
STUCK_AFTER = 180  # seconds a thread may run (confirms of several lines each)


def three_warehouse_shop() -> list:
    """Three products, each with ``PER_WAREHOUSE`` units in each of three warehouses
    (stock rows created warehouse by warehouse, so a product's rows are far apart in
    primary key order)."""
    warehouses = [default_warehouse()] + [
        WarehouseFactory(code=f"race{n}", priority=n) for n in range(1, WAREHOUSES)
    ]
    products = [ProductFactory(sku=f"RACE-{n}") for n in range(3)]
    for warehouse in warehouses:
        for product in products:
            StockLevel.objects.create(product=product, warehouse=warehouse, on_hand=PER_WAREHOUSE)
    return products


def carts_in_opposite_orders(products: list, count: int) -> list[Cart]:
    carts = []
    for n in range(count):
        cart = CartFactory(shipping_address=ADDRESS, payment_method="card")
        for product in products if n % 2 else reversed(products):
            CartItemFactory(cart=cart, product=product, warehouse=None, quantity=LINE)
        carts.append(cart)
    return carts


@pytest.mark.parametrize("strategy", ["priority", "most_available", "fewest_splits"])
def test_many_split_carts_in_opposite_orders_never_deadlock_nor_oversell(settings, strategy):
    settings.ALLOCATION_STRATEGY = strategy
    products = three_warehouse_shop()
    carts = carts_in_opposite_orders(products, CARTS)

    def start(i: int):
        return start_checkout(cart_id=carts[i].id, actor=f"shopper-{i}")

    outcomes = run_concurrently(CARTS, start, join_timeout=STUCK_AFTER)

    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert all(isinstance(e, InsufficientStock) for e in errors), errors
    started = [o for o in outcomes if not isinstance(o, Exception)]
    capacity = PER_WAREHOUSE * WAREHOUSES // LINE
    assert len(started) == capacity
    assert_counters_exact()
    for product in products:
        rows = StockLevel.objects.filter(product=product)
        assert sum(row.reserved for row in rows) == capacity * LINE
        assert all(row.reserved <= row.on_hand for row in rows)
    # Every started cart holds each of its lines exactly, one reservation per warehouse.
    for cart, _ in started:
        pending = Reservation.objects.filter(cart=cart, status=ReservationStatus.PENDING)
        for product in products:
            mine = [r for r in pending if r.product_id == product.id]
            assert sum(r.quantity for r in mine) == LINE
            assert len({r.warehouse_id for r in mine}) == len(mine)

    # The winners pay at the same time, then half of them cancel at the same time.
    paid = run_concurrently(
        len(started),
        lambda i: confirm_checkout(cart_id=started[i][0].id, idempotency_key=f"k{i}", actor="t"),
        join_timeout=STUCK_AFTER,
    )
    assert all(not isinstance(p, Exception) and p.order is not None for p in paid), paid
    assert_counters_exact()
    for product in products:
        assert sum(r.on_hand for r in StockLevel.objects.filter(product=product)) == (
            PER_WAREHOUSE * WAREHOUSES - capacity * LINE
        )
    orders = list(Order.objects.order_by("number"))
    assert len(orders) == capacity
    cancelled = orders[: capacity // 2]
    outcomes = run_concurrently(
        len(cancelled),
        lambda i: cancel_order(order_id=cancelled[i].id, actor="staff", by_staff=True),
        join_timeout=STUCK_AFTER,
    )
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert_counters_exact()
    for product in products:
        assert sum(r.on_hand for r in StockLevel.objects.filter(product=product)) == (
            PER_WAREHOUSE * WAREHOUSES - (capacity - len(cancelled)) * LINE
        )
    assert Cart.objects.filter(status=CartStatus.COMPLETED).count() == capacity


def test_deactivating_a_warehouse_during_a_rush_never_oversells():
    products = three_warehouse_shop()
    carts = carts_in_opposite_orders(products, CARTS)

    def work(i: int):
        if i == 0:
            return catalog.warehouse_update(code="race1", is_active=False)
        return start_checkout(cart_id=carts[i].id, actor=f"shopper-{i}")

    outcomes = run_concurrently(CARTS, work, join_timeout=STUCK_AFTER)

    errors = [o for o in outcomes[1:] if isinstance(o, Exception)]
    assert all(isinstance(e, InsufficientStock) for e in errors), errors
    started = len(outcomes) - 1 - len(errors)
    # 4 carts when the warehouse went inactive after them, fewer when before: never more.
    assert 2 <= started <= PER_WAREHOUSE * WAREHOUSES // LINE
    assert_counters_exact()
    reserved = dict(
        StockLevel.objects.values("product_id")
        .annotate(n=Sum("reserved"))
        .values_list("product_id", "n")
    )
    assert all(reserved[p.id] == started * LINE for p in products)
