"""The stock ledger (SPEC §13 "Stock adjustments"): every staff or ops change of on_hand
goes through the reservation service and leaves one entry (who, when, delta, reason,
on-hand after); ``GET inventory/stock/ledger/`` lists them for staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from inventory import services
from inventory.errors import StockBelowReserved
from inventory.models import StockLedgerEntry, StockLevel
from tests.support import assert_error, reserve
from tests.support.factories import StockLevelFactory, WarehouseFactory

pytestmark = pytest.mark.django_db

STOCK = "/api/v1/inventory/stock/"
LEDGER = "/api/v1/inventory/stock/ledger/"


def entries(stock: StockLevel) -> list[tuple[int, int, str, str]]:
    return [
        (e.delta, e.on_hand_after, e.reason, e.actor)
        for e in StockLedgerEntry.objects.filter(stock_level=stock).order_by("id")
    ]


def test_set_and_adjust_write_one_entry_each():
    stock = StockLevelFactory(on_hand=10)
    kw = {"product": stock.product, "warehouse": stock.warehouse, "actor": "staff:ann"}

    services.set_stock(on_hand=25, reason="delivery", **kw)
    services.adjust_stock(delta=-3, reason="damaged", **kw)
    row = services.adjust_stock(delta=4, reason="found", **kw)

    assert row.on_hand == 26
    assert entries(stock) == [
        (15, 25, "delivery", "staff:ann"),
        (-3, 22, "damaged", "staff:ann"),
        (4, 26, "found", "staff:ann"),
    ]
    stock.refresh_from_db()
    assert stock.on_hand == 26


def test_setting_the_same_value_writes_no_entry():
    stock = StockLevelFactory(on_hand=10)
    services.set_stock(product=stock.product, warehouse=stock.warehouse, on_hand=10, reason="x")
    assert entries(stock) == []


def test_a_new_stock_row_starts_the_ledger_from_zero():
    stock = StockLevelFactory(on_hand=0)
    other = WarehouseFactory(code="north")
    row = services.set_stock(product=stock.product, warehouse=other, on_hand=7, reason="opening")
    assert entries(row) == [(7, 7, "opening", "system")]


@pytest.mark.parametrize("change", ["set", "adjust"])
def test_below_reserved_is_refused_and_writes_nothing(change):
    stock = StockLevelFactory(on_hand=10)
    reserve(stock, 6)
    with pytest.raises(StockBelowReserved) as refused:
        if change == "set":
            services.set_stock(product=stock.product, warehouse=stock.warehouse, on_hand=5)
        else:
            services.adjust_stock(
                product=stock.product, warehouse=stock.warehouse, delta=-5, actor="staff:ann"
            )
    assert refused.value.details["reserved"] == 6
    assert entries(stock) == []
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (10, 6)


def test_an_adjustment_below_zero_is_refused():
    stock = StockLevelFactory(on_hand=2)
    with pytest.raises(StockBelowReserved):
        services.adjust_stock(
            product=stock.product, warehouse=stock.warehouse, delta=-3, actor="staff:ann"
        )
    assert entries(stock) == []


def test_lapsed_holds_are_reclaimed_before_a_decrease():
    stock = StockLevelFactory(on_hand=10)
    with time_machine.travel(timezone.now() - timedelta(minutes=10)):
        reserve(stock, 6, ttl_seconds=60)
    row = services.adjust_stock(
        product=stock.product, warehouse=stock.warehouse, delta=-8, actor="staff:ann"
    )
    assert (row.on_hand, row.reserved) == (2, 0)
    assert entries(stock) == [(-8, 2, "", "staff:ann")]


# --- API ------------------------------------------------------------------------------


def test_put_stock_takes_a_reason_into_the_ledger(staff_client, staff_user):
    stock = StockLevelFactory(on_hand=1)
    response = staff_client.put(
        STOCK,
        {"sku": stock.product.sku, "on_hand": 9, "reason": "stock count"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert entries(stock) == [(8, 9, "stock count", f"staff:{staff_user.username}")]


def test_put_stock_without_a_reason_still_writes_the_ledger(staff_client):
    stock = StockLevelFactory(on_hand=1)
    response = staff_client.put(STOCK, {"sku": stock.product.sku, "on_hand": 4}, format="json")
    assert response.status_code == 200
    assert [e[:3] for e in entries(stock)] == [(3, 4, "")]


def test_the_ledger_lists_entries_newest_first_with_filters(staff_client):
    mug = StockLevelFactory(on_hand=0, product__sku="MUG")
    north = WarehouseFactory(code="north")
    services.set_stock(product=mug.product, warehouse=mug.warehouse, on_hand=5, reason="a")
    services.set_stock(product=mug.product, warehouse=north, on_hand=2, reason="b")
    cap = StockLevelFactory(on_hand=0, product__sku="CAP")
    services.set_stock(product=cap.product, warehouse=cap.warehouse, on_hand=1, reason="c")

    everything = staff_client.get(LEDGER).json()
    mugs = staff_client.get(LEDGER, {"sku": "MUG"}).json()
    north_mugs = staff_client.get(LEDGER, {"sku": "MUG", "warehouse": "north"}).json()
    page = staff_client.get(LEDGER, {"page_size": 1, "page": 2}).json()

    assert everything["count"] == 3
    first = everything["results"][0]
    assert set(first) == {
        "id",
        "sku",
        "warehouse",
        "delta",
        "on_hand_after",
        "reason",
        "actor",
        "created_at",
    }
    assert [r["reason"] for r in everything["results"]] == ["c", "b", "a"]
    assert [(r["sku"], r["warehouse"]) for r in mugs["results"]] == [
        ("MUG", "north"),
        ("MUG", mug.warehouse.code),
    ]
    assert [(r["delta"], r["on_hand_after"]) for r in north_mugs["results"]] == [(2, 2)]
    assert page["count"] == 3 and [r["reason"] for r in page["results"]] == ["b"]


def test_the_ledger_is_for_staff_only(api_client, customer_client):
    assert_error(api_client.get(LEDGER), 401)
    assert_error(customer_client.get(LEDGER), 403)


def test_the_ledger_costs_the_same_queries_for_any_page(staff_client, django_assert_num_queries):
    stock = StockLevelFactory(on_hand=0)
    for on_hand in range(1, 6):
        services.set_stock(product=stock.product, warehouse=stock.warehouse, on_hand=on_hand)
    # Token and user, count, page (with product and warehouse joined).
    with django_assert_num_queries(3):
        response = staff_client.get(LEDGER)
    assert response.json()["count"] == 5
