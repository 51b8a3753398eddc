"""``manage.py seed_demo``: an idempotent demo catalog with in-stock, low and
out-of-stock products."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from inventory import services
from inventory.models import Product, StockLevel
from inventory.services import ReservationLine
from inventory.stock import stock_status

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def snapshot() -> list[tuple]:
    return list(
        StockLevel.objects.order_by("product__sku").values_list(
            "product__sku",
            "product__name",
            "product__price",
            "warehouse__code",
            "on_hand",
            "reserved",
            "updated_at",
            "product__updated_at",
        )
    )


def test_seed_creates_a_priced_catalog_with_stock_in_the_default_warehouse(settings):
    settings.LOW_STOCK_THRESHOLD = 5

    out = seed()

    products = list(Product.objects.all())
    assert 6 <= len(products) <= 10
    assert all(p.price > 0 and p.currency == "USD" for p in products)
    rows = StockLevel.objects.select_related("warehouse")
    assert {row.warehouse.code for row in rows} == {"default"}
    assert rows.count() == len(products)
    statuses = [stock_status(row.available) for row in rows]
    assert statuses.count("low_stock") == 1
    assert statuses.count("out_of_stock") == 1
    assert statuses.count("in_stock") == len(products) - 2
    assert f"{len(products)} created" in out.splitlines()[-1]
    assert sum(line.startswith("created product") for line in out.splitlines()) == len(products)


def test_low_stock_item_respects_the_configured_threshold(settings):
    settings.LOW_STOCK_THRESHOLD = 2

    seed()

    statuses = [stock_status(row.available) for row in StockLevel.objects.all()]
    assert statuses.count("low_stock") == 1


def test_running_twice_changes_nothing():
    seed()
    before = snapshot()

    out = seed()

    assert snapshot() == before
    assert out.splitlines() == [
        f"seed_demo: {len(before)} demo products in warehouse default: "
        f"0 created, stock set for 0, {len(before)} unchanged"
    ]


def test_rerun_restores_demo_stock_but_never_below_reserved():
    seed()
    mug = StockLevel.objects.get(product__sku="DEMO-MUG")
    pens = StockLevel.objects.get(product__sku="DEMO-PENS")
    target_mug, target_pens = mug.on_hand, pens.on_hand
    # Sold some mugs; someone holds more pens than the demo level.
    services.set_stock(product=mug.product, warehouse=mug.warehouse, on_hand=5)
    services.set_stock(product=pens.product, warehouse=pens.warehouse, on_hand=target_pens + 50)
    services.reserve(
        lines=[ReservationLine(pens.product_id, pens.warehouse_id, target_pens + 20)],
        ttl_seconds=300,
    )

    out = seed()

    mug.refresh_from_db()
    pens.refresh_from_db()
    assert mug.on_hand == target_mug
    assert (pens.on_hand, pens.reserved) == (target_pens + 20, target_pens + 20)
    assert f"stock DEMO-MUG @ default: on_hand 5 -> {target_mug}" in out
    assert f"stock DEMO-PENS @ default: on_hand {target_pens + 50} -> {target_pens + 20}" in out
    # Once more: nothing left to do.
    assert "stock set for 0" in seed()


def test_existing_products_are_left_as_they_are():
    seed()
    Product.objects.filter(sku="DEMO-MUG").update(name="Renamed by staff")

    seed()

    assert Product.objects.get(sku="DEMO-MUG").name == "Renamed by staff"
