"""Staff and several warehouses (SPEC §14): a warehouse's priority and active flag are
edited in the admin; a checkout's lines and an order's items show where they are held and
the strategy that chose it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from carts.models import CartItem
from checkout.confirm import confirm_checkout
from checkout.services import start_checkout
from inventory.models import StockLevel, Warehouse
from tests.support import ADDRESS
from tests.support.factories import (
    CartFactory,
    CartItemFactory,
    ProductFactory,
    WarehouseFactory,
    default_warehouse,
)

pytestmark = pytest.mark.django_db


def change(obj) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def split_checkout(settings, strategy: str = "priority"):
    """A cart in checkout with one unpinned line of 5, held 3 in ``default`` and 2 in
    ``north``."""
    settings.ALLOCATION_STRATEGY = strategy
    product = ProductFactory(sku="SPLIT-5")
    north = WarehouseFactory(code="north", priority=1)
    StockLevel.objects.create(product=product, warehouse=default_warehouse(), on_hand=3)
    StockLevel.objects.create(product=product, warehouse=north, on_hand=10)
    cart = CartFactory(shipping_address=ADDRESS, payment_method="card")
    CartItemFactory(cart=cart, product=product, warehouse=None, quantity=5)
    start_checkout(cart_id=cart.id, actor="test")
    return cart


def test_staff_edit_a_warehouses_priority_and_active_flag(staff_browser):
    north = WarehouseFactory(code="north", name="North")

    listed = staff_browser.get(reverse("admin:inventory_warehouse_changelist"))
    assert listed.status_code == 200
    assert b'name="form-0-priority"' in listed.content
    assert b'name="form-0-is_active"' in listed.content

    response = staff_browser.post(
        change(north),
        {"name": "North", "priority": "4"},  # is_active unticked
    )

    assert response.status_code == 302, response.content
    north.refresh_from_db()
    assert (north.code, north.priority, north.is_active) == ("north", 4, False)


def test_a_checkout_line_shows_where_it_is_held_and_the_strategy(staff_browser, settings):
    cart = split_checkout(settings)

    page = staff_browser.get(change(cart)).content.decode()

    assert "3 from default, 2 from north (priority)" in page
    assert "any active" in page  # the line names no warehouse


def test_an_order_item_shows_the_warehouses_it_was_taken_from(staff_browser, settings):
    cart = split_checkout(settings, strategy="most_available")
    result = confirm_checkout(cart_id=cart.id, actor="test")

    page = staff_browser.get(change(result.order)).content.decode()

    assert "5 from north (most_available)" in page
    assert CartItem.objects.get(cart=cart).warehouse is None
    assert Warehouse.objects.get(code="north").priority == 1
