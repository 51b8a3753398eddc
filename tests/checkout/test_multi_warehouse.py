"""A checkout over several warehouses (SPEC §14), through the API: everything that touches
a line follows it into every warehouse it was allocated to — the checkout state's
``allocations``, extension, removal of a line, expiry, confirm (each allocation into the
order item), order cancellation (restock per warehouse), the pre-reservation-off path and
reconciliation. Availability counts the active warehouses only."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from carts.models import CartStatus
from carts.tokens import hash_token
from checkout.reconcile import GRACE_SECONDS, reconcile_captured_payments
from checkout.services import start_checkout
from inventory import catalog
from inventory.models import Reservation, ReservationStatus, StockLevel
from orders.models import Order
from tests.support import (
    ADDRESS,
    API,
    TOKEN,
    Shopper,
    accept_new_orders,
    assert_error,
    confirm,
    refuse_new_orders,
)
from tests.support.factories import (
    CartFactory,
    CartItemFactory,
    ProductFactory,
    WarehouseFactory,
    default_warehouse,
)
from tests.support.shopper import assert_constant_queries
from tests.support.statements import REQUEST_STATEMENTS
from tests.support.stock import assert_stock_invariants, numbers

pytestmark = pytest.mark.django_db


def spread(sku: str, **on_hand: int) -> dict[str, StockLevel]:
    """A product stocked in warehouses by code (``default`` first, then the others with
    priority 1, 2, ... in the order given)."""
    product = ProductFactory(sku=sku)
    rows = {}
    for priority, (code, quantity) in enumerate(on_hand.items()):
        warehouse = (
            default_warehouse()
            if code == "default"
            else WarehouseFactory(code=code, priority=priority)
        )
        if code != "default" and warehouse.priority != priority:
            warehouse.priority = priority
            warehouse.save(update_fields=["priority"])
        rows[code] = StockLevel.objects.create(
            product=product, warehouse=warehouse, on_hand=quantity
        )
    return rows


def held(cart_id: str) -> list[tuple[str, str, int]]:
    return [
        (r.product.sku, r.warehouse.code, r.quantity)
        for r in Reservation.objects.filter(cart_id=cart_id, status=ReservationStatus.PENDING)
        .select_related("product", "warehouse")
        .order_by("id")
    ]


def ready(shopper: Shopper) -> None:
    response = shopper.update({"shipping_address": ADDRESS, "payment_method": "card"})
    assert response.status_code == 200, response.content


def test_start_splits_an_unpinned_line_and_the_state_lists_the_allocations():
    tea = spread("TEA", default=3, north=10)
    spread("CUP", default=10, north=10)
    shopper = Shopper()
    cart = shopper.cart_with(("TEA", 5), ("CUP", 2))
    assert [item["warehouse"] for item in cart["items"]] == [None, None]

    response = shopper.start()

    assert response.status_code == 201, response.content
    state = response.json()
    tea_item, cup_item = cart["items"]
    pending = list(Reservation.objects.order_by("id"))
    assert [
        (a["item_id"], a["sku"], a["warehouse"], a["quantity"]) for a in state["allocations"]
    ] == [
        (tea_item["id"], "TEA", "default", 3),
        (tea_item["id"], "TEA", "north", 2),
        (cup_item["id"], "CUP", "default", 2),
    ]
    assert [a["reservation_id"] for a in state["allocations"]] == [r.id for r in pending]
    assert {a["strategy"] for a in state["allocations"]} == {"priority"}
    assert state["reservation_ids"] == [r.id for r in pending]
    assert state["reservation_map"][tea_item["product_id"]] == pending[0].id
    assert numbers(tea["default"]) == (3, 3)
    assert numbers(tea["north"]) == (10, 2)
    assert state["cart"]["items"][0]["warehouse"] is None


def test_a_pinned_line_is_held_only_in_its_warehouse():
    spread("TEA", default=10, north=3)
    shopper = Shopper()
    shopper.create_cart()
    assert shopper.add("TEA", 4, warehouse="north").status_code == 201

    response = shopper.start()

    assert response.status_code == 400
    [item] = assert_error(response)["details"]["items"]
    assert (item["warehouse"], item["available"], item["requested"]) == ("north", 3, 4)


def test_a_short_split_line_reports_its_total_over_the_active_warehouses():
    spread("TEA", default=2, north=2, south=9)
    catalog.warehouse_update(code="south", is_active=False)
    shopper = Shopper()
    shopper.cart_with(("TEA", 5))

    response = shopper.start()

    assert response.status_code == 400
    [item] = assert_error(response)["details"]["items"]
    assert (item["warehouse"], item["available"], item["requested"]) == (None, 4, 5)
    assert not Reservation.objects.exists()


def test_removing_a_split_line_releases_every_hold_of_it():
    tea = spread("TEA", default=1, north=1, south=5)
    spread("CUP", default=5)
    shopper = Shopper()
    cart = shopper.cart_with(("TEA", 4), ("CUP", 1))
    shopper.start()
    assert [w for sku, w, _ in held(shopper.cart_id) if sku == "TEA"] == [
        "default",
        "north",
        "south",
    ]

    response = shopper.remove(cart["items"][0]["id"])

    assert response.status_code == 200
    assert held(shopper.cart_id) == [("CUP", "default", 1)]
    assert [numbers(row)[1] for row in tea.values()] == [0, 0, 0]
    assert_stock_invariants()


def test_an_extension_moves_the_expiry_of_every_hold_in_every_warehouse():
    # Plenty left after the hold: not a scarcity hold (SPEC §15), the ordinary TTLs apply.
    spread("TEA", default=2, north=50)
    shopper = Shopper()
    shopper.cart_with(("TEA", 4))
    shopper.start()

    with time_machine.travel(timezone.now() + timedelta(seconds=200)):
        response = shopper.update({"current_step": 2})
        now = timezone.now()

    assert response.status_code == 200
    pending = list(Reservation.objects.filter(status=ReservationStatus.PENDING))
    assert len(pending) == 2
    expected = now + timedelta(seconds=settings.CHECKOUT_EXTENSION_TTL_SECONDS)
    assert len({r.expires_at for r in pending}) == 1
    assert abs((pending[0].expires_at - expected).total_seconds()) < 2
    assert all(r.extension_count == 1 for r in pending)
    assert response.json()["reservation_expires_at"] == response.json()["cart"]["expires_at"]


def test_an_expired_split_checkout_is_cleaned_up_in_every_warehouse():
    tea = spread("TEA", default=2, north=5)
    shopper = Shopper()
    shopper.cart_with(("TEA", 4))
    shopper.start()

    with time_machine.travel(timezone.now() + timedelta(seconds=301)):
        response = shopper.state()

    assert response.status_code == 410
    assert set(Reservation.objects.values_list("status", flat=True)) == {ReservationStatus.EXPIRED}
    assert [numbers(row) for row in tea.values()] == [(2, 0), (5, 0)]


def test_another_shoppers_lapsed_split_hold_never_blocks():
    spread("TEA", default=2, north=2)
    first = Shopper()
    first.cart_with(("TEA", 4))
    with time_machine.travel(timezone.now() - timedelta(seconds=600)):
        assert first.start().status_code == 201
    second = Shopper()
    second.cart_with(("TEA", 4))

    response = second.start()

    assert response.status_code == 201, response.content
    assert sum(a["quantity"] for a in response.json()["allocations"]) == 4
    assert_stock_invariants()


def test_confirm_takes_each_allocation_into_the_order_item_and_cancel_restocks_each():
    tea = spread("TEA", default=3, north=10)
    shopper = Shopper()
    shopper.cart_with(("TEA", 5))
    shopper.start()
    ready(shopper)

    response = shopper.call("post", f"carts/{shopper.cart_id}/checkout/confirm/", {})

    assert response.status_code == 201, response.content
    [item] = response.json()["items"]
    assert [(a["warehouse"], a["quantity"]) for a in item["allocations"]] == [
        ("default", 3),
        ("north", 2),
    ]
    assert item["warehouse"] == "default"
    assert item["reservation_id"] == item["allocations"][0]["reservation_id"]
    assert numbers(tea["default"]) == (0, 0)
    assert numbers(tea["north"]) == (8, 0)

    order_id = response.json()["id"]
    cancelled = shopper.call("post", f"orders/{order_id}/cancel/", {})
    assert cancelled.status_code == 200, cancelled.content
    assert numbers(tea["default"]) == (3, 0)
    assert numbers(tea["north"]) == (10, 0)
    assert_stock_invariants()


def test_without_pre_reservation_start_checks_every_warehouse_and_confirm_splits(settings):
    settings.ENABLE_PRE_RESERVATION = False
    tea = spread("TEA", default=1, north=1, south=3)
    shopper = Shopper()
    shopper.cart_with(("TEA", 5))

    started = shopper.start()
    assert started.status_code == 201, started.content
    assert not Reservation.objects.exists()
    ready(shopper)
    response = shopper.call("post", f"carts/{shopper.cart_id}/checkout/confirm/", {})

    assert response.status_code == 201, response.content
    [item] = response.json()["items"]
    assert [(a["warehouse"], a["quantity"]) for a in item["allocations"]] == [
        ("default", 1),
        ("north", 1),
        ("south", 3),
    ]
    assert [numbers(row) for row in tea.values()] == [(0, 0), (0, 0), (0, 0)]


def test_without_pre_reservation_a_short_line_counts_every_active_warehouse(settings):
    settings.ENABLE_PRE_RESERVATION = False
    spread("TEA", default=1, north=1)
    shopper = Shopper()
    shopper.cart_with(("TEA", 3))

    response = shopper.start()

    assert response.status_code == 400
    [item] = assert_error(response)["details"]["items"]
    assert (item["warehouse"], item["available"]) == (None, 2)


def test_reconciliation_confirms_every_allocation_of_a_split_line(api_client):
    tea = spread("TEA", default=2, north=5)
    cart = CartFactory(
        token_hash=hash_token(TOKEN),
        shipping_address=ADDRESS,
        payment_method="card",
    )
    CartItemFactory(cart=cart, product=tea["default"].product, warehouse=None, quantity=4)
    start_checkout(cart_id=cart.id, actor="test")
    refuse_new_orders()
    assert confirm(api_client, cart, key="k").status_code == 202
    accept_new_orders()

    with time_machine.travel(timezone.now() + timedelta(seconds=GRACE_SECONDS + 1)):
        assert reconcile_captured_payments(batch_size=10) == 1

    order = Order.objects.get(cart=cart)
    assert sorted(
        (r.warehouse.code, r.quantity, r.status) for r in order.items.get().reservations
    ) == [("default", 2, "confirmed"), ("north", 2, "confirmed")]
    assert [numbers(row) for row in tea.values()] == [(0, 0), (3, 0)]
    cart.refresh_from_db()
    assert cart.status == CartStatus.COMPLETED


# --- availability ---------------------------------------------------------------------


def test_a_products_availability_counts_the_active_warehouses(api_client, settings):
    settings.LOW_STOCK_THRESHOLD = 5
    tea = spread("TEA", default=2, north=2, south=20)
    url = f"{API}/products/{tea['default'].product_id}/"
    assert (
        api_client.get(url).json()["available"],
        api_client.get(url).json()["stock_status"],
    ) == (
        24,
        "in_stock",
    )

    catalog.warehouse_update(code="south", is_active=False)

    body = api_client.get(url).json()
    assert (body["available"], body["stock_status"]) == (4, "low_stock")
    listed = api_client.get(f"{API}/products/?sku=TEA").json()["results"][0]
    assert listed["available"] == 4


def test_validate_stock_counts_every_active_warehouse_and_the_carts_own_holds():
    spread("TEA", default=2, north=3, south=4)
    shopper = Shopper()
    shopper.cart_with(("TEA", 6))
    assert shopper.validate_stock().json()["items"][0]["available"] == 9
    shopper.start()  # holds 2 in default, 3 in north, 1 in south

    catalog.warehouse_update(code="north", is_active=False)
    line = shopper.validate_stock().json()["items"][0]

    # default 2 (own) + south 4 (1 own) + the own 3 still held in the inactive north.
    assert (line["warehouse"], line["available"], line["reserved"], line["status"]) == (
        None,
        9,
        6,
        "in_stock",
    )


# --- staff: warehouses ------------------------------------------------------------------


def test_staff_change_a_warehouses_priority_and_active_flag(staff_client):
    WarehouseFactory(code="north")

    response = staff_client.patch(
        f"{API}/warehouses/north/", {"priority": 7, "is_active": False}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["code"], body["priority"], body["is_active"]) == ("north", 7, False)
    listed = {w["code"]: w for w in staff_client.get(f"{API}/warehouses/").json()["results"]}
    assert (listed["default"]["priority"], listed["default"]["is_active"]) == (0, True)
    assert listed["north"]["priority"] == 7
    missing = staff_client.patch(f"{API}/warehouses/atlantis/", {"priority": 1}, format="json")
    assert (missing.status_code, assert_error(missing)["code"]) == (404, "NOT_FOUND")
    bad = staff_client.patch(f"{API}/warehouses/north/", {"priority": "x"}, format="json")
    assert bad.status_code == 400


def test_only_staff_change_a_warehouse(api_client):
    WarehouseFactory(code="north")

    response = api_client.patch(f"{API}/warehouses/north/", {"priority": 1}, format="json")

    assert response.status_code == 401


def test_staff_create_a_warehouse_with_priority_and_active_flag(staff_client):
    response = staff_client.post(
        f"{API}/warehouses/",
        {"code": "east", "name": "East", "priority": 3, "is_active": False},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert (response.json()["priority"], response.json()["is_active"]) == (3, False)


# --- cost -------------------------------------------------------------------------------


def test_a_split_start_costs_the_same_statements_for_1_and_10_lines_as_one_warehouse(
    django_assert_num_queries,
):
    for n in (1, 2):
        WarehouseFactory(code=f"w{n}", priority=n)
    products = []
    for index in range(11):
        product = ProductFactory(sku=f"SPLIT-{index}")
        for warehouse in (default_warehouse(), *[WarehouseFactory(code=f"w{n}") for n in (1, 2)]):
            StockLevel.objects.create(product=product, warehouse=warehouse, on_hand=2)
        products.append(product)
    one, ten = Shopper(), Shopper()
    one.cart_with((products[0].sku, 6))  # every line needs all three warehouses
    ten.cart_with(*[(p.sku, 6) for p in products[1:]])

    small, large = assert_constant_queries(
        django_assert_num_queries,
        one.start,
        ten.start,
        at_most=REQUEST_STATEMENTS["start checkout"],
    )

    assert small.status_code == large.status_code == 201
    assert len(large.json()["allocations"]) == 30


def test_the_storefront_badge_counts_the_active_warehouses(client, settings):
    settings.LOW_STOCK_THRESHOLD = 5
    spread("TEA", default=0, north=2, south=20)
    page = client.get("/products/TEA/")
    assert 'data-stock-status="in_stock"' in page.content.decode()

    catalog.warehouse_update(code="south", is_active=False)

    page = client.get("/products/TEA/").content.decode()
    assert 'data-stock-status="low_stock"' in page
    assert "Low stock: 2 left" in page
