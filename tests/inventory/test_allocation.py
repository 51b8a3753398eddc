"""Allocation over several warehouses (SPEC §14): a line that names no warehouse is served
by the active warehouses in the order of ``ALLOCATION_STRATEGY``, split when one cannot
fill it (one reservation per line and warehouse); a pinned line only by its warehouse.
All or nothing over every line; the short-line error reports each line's total."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from inventory import catalog, services
from inventory.errors import InsufficientStock
from inventory.models import Reservation, ReservationStatus, StockLevel
from inventory.services import ReservationLine
from tests.support import stocked
from tests.support.factories import ProductFactory, WarehouseFactory, default_warehouse
from tests.support.stock import assert_stock_invariants, numbers

pytestmark = pytest.mark.django_db


def shop(*levels: tuple[str, int, int], product=None):
    """Warehouses ``(code, priority, on_hand)`` stocking one product (the default
    warehouse is code ``default``); returns the product and its rows by code."""
    product = product or ProductFactory()
    rows = {}
    for code, priority, on_hand in levels:
        if code == "default":
            warehouse = default_warehouse()
            warehouse.priority = priority
            warehouse.save(update_fields=["priority"])
        else:
            warehouse = WarehouseFactory(code=code, priority=priority)
        rows[code] = StockLevel.objects.create(
            product=product, warehouse=warehouse, on_hand=on_hand
        )
    return product, rows


def unpinned(product, quantity: int) -> ReservationLine:
    return ReservationLine(product.id, None, quantity)


def split(reservations: list[Reservation]) -> list[tuple[str, int, str]]:
    return [(r.warehouse.code, r.quantity, r.allocation_strategy) for r in reservations]


# --- priority ---------------------------------------------------------------------


def test_priority_fills_from_the_lowest_priority_first_and_splits_over_the_next():
    product, rows = shop(("default", 0, 3), ("north", 1, 10), ("south", 2, 10))

    made = services.reserve(lines=[unpinned(product, 5)], ttl_seconds=300, strategy="priority")

    assert split(made) == [("default", 3, "priority"), ("north", 2, "priority")]
    assert numbers(rows["default"]) == (3, 3)
    assert numbers(rows["north"]) == (10, 2)
    assert numbers(rows["south"]) == (10, 0)
    assert_stock_invariants()


def test_priority_ties_go_to_the_default_warehouse_then_by_code():
    product, _ = shop(("zeta", 0, 2), ("default", 0, 2), ("alpha", 0, 2))

    made = services.reserve(lines=[unpinned(product, 5)], ttl_seconds=300, strategy="priority")

    assert split(made) == [
        ("default", 2, "priority"),
        ("alpha", 2, "priority"),
        ("zeta", 1, "priority"),
    ]


def test_a_line_that_needs_every_warehouse_takes_all_of_them():
    product, _ = shop(("default", 0, 1), ("north", 1, 2), ("south", 2, 3))

    made = services.reserve(lines=[unpinned(product, 6)], ttl_seconds=300)

    assert split(made) == [
        ("default", 1, "priority"),
        ("north", 2, "priority"),
        ("south", 3, "priority"),
    ]
    assert all(row.available == 0 for row in StockLevel.objects.filter(product=product))


def test_priority_is_the_default_strategy(settings):
    settings.ALLOCATION_STRATEGY = "priority"
    product, _ = shop(("default", 5, 10), ("north", 1, 10))

    [made] = services.reserve(lines=[unpinned(product, 4)], ttl_seconds=300)

    assert (made.warehouse.code, made.allocation_strategy) == ("north", "priority")


# --- most_available -----------------------------------------------------------------


def test_most_available_takes_the_fullest_warehouse_first():
    product, _ = shop(("default", 0, 3), ("north", 1, 9), ("south", 2, 5))

    made = services.reserve(
        lines=[unpinned(product, 12)], ttl_seconds=300, strategy="most_available"
    )

    assert split(made) == [("north", 9, "most_available"), ("south", 3, "most_available")]


def test_most_available_ties_follow_priority():
    product, _ = shop(("default", 3, 4), ("north", 1, 4), ("south", 2, 4))

    made = services.reserve(
        lines=[unpinned(product, 6)], ttl_seconds=300, strategy="most_available"
    )

    assert split(made) == [("north", 4, "most_available"), ("south", 2, "most_available")]


def test_most_available_counts_what_is_free_not_what_is_on_hand():
    product, rows = shop(("default", 0, 10), ("north", 1, 6))
    services.reserve(
        lines=[ReservationLine(product.id, rows["default"].warehouse_id, 7)], ttl_seconds=300
    )

    [made] = services.reserve(
        lines=[unpinned(product, 2)], ttl_seconds=300, strategy="most_available"
    )

    assert made.warehouse.code == "north"  # 6 free against 3 free in default


# --- fewest_splits ----------------------------------------------------------------


def test_fewest_splits_prefers_one_warehouse_that_fills_the_whole_line():
    product, _ = shop(("default", 0, 3), ("north", 1, 4), ("south", 2, 8))

    made = services.reserve(lines=[unpinned(product, 6)], ttl_seconds=300, strategy="fewest_splits")

    assert split(made) == [("south", 6, "fewest_splits")]


def test_fewest_splits_takes_the_first_whole_warehouse_by_priority_on_a_tie():
    product, _ = shop(("default", 0, 3), ("north", 2, 8), ("south", 1, 8))

    made = services.reserve(lines=[unpinned(product, 6)], ttl_seconds=300, strategy="fewest_splits")

    assert split(made) == [("south", 6, "fewest_splits")]


def test_fewest_splits_splits_by_priority_when_no_warehouse_can_fill_the_line():
    product, _ = shop(("default", 0, 3), ("north", 2, 4), ("south", 1, 4))

    made = services.reserve(lines=[unpinned(product, 9)], ttl_seconds=300, strategy="fewest_splits")

    assert split(made) == [
        ("default", 3, "fewest_splits"),
        ("south", 4, "fewest_splits"),
        ("north", 2, "fewest_splits"),
    ]


# --- pinned lines, inactive warehouses, all or nothing ----------------------------------


def test_a_pinned_line_is_served_only_by_its_warehouse():
    product, rows = shop(("default", 0, 10), ("north", 1, 2))

    with pytest.raises(InsufficientStock) as error:
        services.reserve(
            lines=[ReservationLine(product.id, rows["north"].warehouse_id, 3)], ttl_seconds=300
        )

    assert error.value.items == [
        {
            "product_id": str(product.id),
            "sku": product.sku,
            "warehouse": "north",
            "available": 2,
            "requested": 3,
        }
    ]
    [made] = services.reserve(
        lines=[ReservationLine(product.id, rows["north"].warehouse_id, 2)], ttl_seconds=300
    )
    assert (made.warehouse.code, made.allocation_strategy) == ("north", "pinned")


def test_an_inactive_warehouse_takes_no_new_allocation():
    product, rows = shop(("default", 0, 2), ("north", 1, 10))
    catalog.warehouse_update(code="north", is_active=False)

    with pytest.raises(InsufficientStock) as error:
        services.reserve(lines=[unpinned(product, 3)], ttl_seconds=300)
    assert error.value.items[0]["available"] == 2
    with pytest.raises(InsufficientStock):
        services.reserve(
            lines=[ReservationLine(product.id, rows["north"].warehouse_id, 1)], ttl_seconds=300
        )

    [made] = services.reserve(lines=[unpinned(product, 2)], ttl_seconds=300)
    assert made.warehouse.code == "default"


def test_a_hold_in_a_deactivated_warehouse_runs_its_course():
    product, rows = shop(("default", 0, 2), ("north", 1, 10))
    held = services.reserve(lines=[unpinned(product, 5)], ttl_seconds=300)
    catalog.warehouse_update(code="north", is_active=False)
    ids = [r.id for r in held]

    services.extend(reservation_ids=ids, expires_at=timezone.now() + timedelta(seconds=600))
    services.confirm(reservation_ids=ids, order_id=_order_id())

    assert numbers(rows["north"]) == (7, 0)
    assert numbers(rows["default"]) == (0, 0)
    assert_stock_invariants()


def _order_id():
    from tests.support.factories import OrderFactory

    return OrderFactory().id


def test_the_whole_request_is_all_or_nothing_and_reports_each_lines_total():
    tea, tea_rows = shop(("default", 0, 2), ("north", 1, 3))
    cup, _ = shop(("default", 0, 1), ("north", 1, 1), product=ProductFactory())
    pot = stocked(on_hand=9)

    with pytest.raises(InsufficientStock) as error:
        services.reserve(
            lines=[
                unpinned(tea, 5),  # exactly what the two warehouses hold: fits
                unpinned(cup, 3),  # 2 in all: short
                ReservationLine(pot.product_id, pot.warehouse_id, 10),  # 9: short
            ],
            ttl_seconds=300,
        )

    assert [
        (i["sku"], i["warehouse"], i["available"], i["requested"]) for i in error.value.items
    ] == [
        (cup.sku, None, 2, 3),
        (pot.product.sku, "default", 9, 10),
    ]
    assert not Reservation.objects.exists()
    assert numbers(tea_rows["north"]) == (3, 0)


def test_a_pinned_and_an_unpinned_line_of_one_product_share_the_stock():
    product, rows = shop(("default", 0, 4), ("north", 1, 4))

    made = services.reserve(
        lines=[ReservationLine(product.id, rows["default"].warehouse_id, 3), unpinned(product, 4)],
        ttl_seconds=300,
    )

    # The pinned line took 3 of default's 4; the unpinned one 1 there and 3 in north;
    # one reservation per stock row.
    assert sorted((r.warehouse.code, r.quantity) for r in made) == [("default", 4), ("north", 3)]
    with pytest.raises(InsufficientStock):
        services.reserve(lines=[unpinned(product, 2)], ttl_seconds=300)


def test_a_lapsed_hold_in_any_candidate_warehouse_never_blocks():
    product, _ = shop(("default", 0, 2), ("north", 1, 2), ("south", 2, 2))
    with time_machine.travel(timezone.now() - timedelta(seconds=600)):
        old = services.reserve(lines=[unpinned(product, 6)], ttl_seconds=60)

    made = services.reserve(lines=[unpinned(product, 6)], ttl_seconds=300)

    assert sum(r.quantity for r in made) == 6
    assert set(
        Reservation.objects.filter(id__in=[r.id for r in old]).values_list("status", flat=True)
    ) == {ReservationStatus.EXPIRED}
    assert_stock_invariants()


def test_a_shop_with_one_warehouse_reserves_as_before():
    row = stocked(on_hand=5)

    [made] = services.reserve(lines=[unpinned(row.product, 5)], ttl_seconds=300)

    assert (made.stock_level_id, made.quantity, made.allocation_strategy) == (row.id, 5, "priority")
    with pytest.raises(InsufficientStock) as error:
        services.reserve(lines=[unpinned(row.product, 1)], ttl_seconds=300)
    assert error.value.items[0]["available"] == 0


@pytest.mark.parametrize("warehouses", [1, 3, 6])
@pytest.mark.parametrize("lines", [1, 10])
def test_a_split_reserve_costs_two_statements_whatever_the_lines_and_warehouses(
    django_assert_num_queries, warehouses, lines
):
    codes = ["default"] + [f"w{n}" for n in range(1, warehouses)]
    products = [
        shop(*[(code, n, 2) for n, code in enumerate(codes)], product=ProductFactory())[0]
        for _ in range(lines)
    ]
    wanted = [unpinned(p, 2 * warehouses) for p in products]  # every line needs every warehouse

    with django_assert_num_queries(2 + 2):  # savepoint + release; lock; write
        made = services.reserve(lines=wanted, ttl_seconds=300)

    assert len(made) == lines * warehouses


def test_the_lock_takes_every_candidate_row_in_ascending_primary_key(
    django_capture_on_commit_callbacks,
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    product, _ = shop(("default", 0, 1), ("north", 1, 1))
    with CaptureQueriesContext(connection) as queries:
        services.reserve(lines=[unpinned(product, 2)], ttl_seconds=300)
    lock = next(q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"])
    assert "ORDER BY s.id" in lock and "FOR UPDATE OF s" in lock


def test_an_unknown_strategy_is_refused():
    product, _ = shop(("default", 0, 1))
    with pytest.raises(ValueError):
        services.reserve(lines=[unpinned(product, 1)], ttl_seconds=300, strategy="random")
