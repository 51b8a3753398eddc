"""The waitlist endpoints of a cart as a shopper uses them (API.md "Waitlists", SPEC §15):
join, read and leave, their answers and every error code. How freed units reach the
queue is in ``test_waitlist_offers``."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from carts.models import Cart, CartStatus
from inventory.models import StockLevel, WaitlistEntry, WaitlistStatus
from tests.support import (
    TOKEN,
    Shopper,
    assert_error,
    assert_stock_invariants,
    cart_in_checkout,
    stocked,
)
from tests.support.factories import UserFactory, WarehouseFactory

pytestmark = pytest.mark.django_db

ENTRY_FIELDS = {
    "id",
    "product_id",
    "sku",
    "warehouse",
    "quantity",
    "status",
    "position",
    "offer_expires_at",
    "reservation_id",
    "created_at",
}


def join(shopper: Shopper, sku: str, quantity: int = 1, **extra):
    token = extra.pop("token", None)
    body = {"sku": sku, "quantity": quantity, **extra}
    return shopper.call("post", f"carts/{shopper.cart_id}/waitlist/", body, token=token)


def waitlist(shopper: Shopper, **kw):
    return shopper.call("get", f"carts/{shopper.cart_id}/waitlist/", **kw)


def leave(shopper: Shopper, entry_id, **kw):
    return shopper.call("delete", f"carts/{shopper.cart_id}/waitlist/{entry_id}/", **kw)


def joined(sku: str, quantity: int = 1, **extra) -> tuple[Shopper, dict]:
    """A shopper with a new cart that joined the waitlist of ``sku``."""
    shopper = Shopper()
    shopper.create_cart()
    response = join(shopper, sku, quantity, **extra)
    assert response.status_code == 201, response.content
    return shopper, response.json()


@pytest.fixture
def sold_out() -> StockLevel:
    return stocked(on_hand=0)


# --- join ------------------------------------------------------------------------------


def test_joining_a_sold_out_product_answers_201_with_the_waiting_entry(sold_out):
    shopper, entry = joined(sold_out.product.sku, 2)

    assert set(entry) == ENTRY_FIELDS
    assert entry["product_id"] == str(sold_out.product_id)
    assert entry["sku"] == sold_out.product.sku
    assert entry["warehouse"] is None
    assert entry["quantity"] == 2
    assert entry["status"] == "waiting"
    assert entry["position"] == 1
    assert entry["offer_expires_at"] is None
    assert entry["reservation_id"] is None
    assert entry["created_at"]
    stored = WaitlistEntry.objects.get(id=entry["id"])
    assert (str(stored.cart_id), stored.quantity) == (shopper.cart_id, 2)
    # The units it wants are withheld from everyone else.
    assert StockLevel.objects.get(id=sold_out.id).waitlisted == 2
    assert_stock_invariants()


def test_joining_for_a_quantity_that_can_be_reserved_now_answers_stock_available():
    stock = stocked(on_hand=3)
    shopper = Shopper()
    shopper.create_cart()

    error = assert_error(join(shopper, stock.product.sku, 3), 409, "STOCK_AVAILABLE")

    assert error["details"] == {"sku": stock.product.sku, "requested": 3}
    assert not WaitlistEntry.objects.exists()
    # One more than is free may wait.
    assert join(shopper, stock.product.sku, 4).status_code == 201


def test_units_wanted_by_earlier_entries_count_as_taken_when_joining():
    stock = stocked(on_hand=1)
    _, first = joined(stock.product.sku, 2)

    # The free unit is withheld for the first entry: one unit is not available now.
    _, entry = joined(stock.product.sku, 1)

    assert (first["position"], entry["position"]) == (1, 2)
    assert StockLevel.objects.get(id=stock.id).waitlisted == 3


def test_a_second_join_changes_the_quantity_of_the_waiting_entry_and_keeps_its_place(sold_out):
    sku = sold_out.product.sku
    first, entry = joined(sku, 1)
    joined(sku, 1)

    again = join(first, sku, 5)

    assert again.status_code == 201
    body = again.json()
    assert (body["id"], body["quantity"], body["position"]) == (entry["id"], 5, 1)
    assert WaitlistEntry.objects.filter(cart_id=first.cart_id).count() == 1
    assert StockLevel.objects.get(id=sold_out.id).waitlisted == 6


def test_a_second_join_of_an_offered_entry_answers_the_offer_as_it_is(sold_out, staff_client):
    sku = sold_out.product.sku
    shopper, entry = joined(sku, 2)
    staff_client.put("/api/v1/inventory/stock/", {"sku": sku, "on_hand": 2}, format="json")

    again = join(shopper, sku, 7)

    assert again.status_code == 201
    body = again.json()
    assert (body["id"], body["status"], body["quantity"]) == (entry["id"], "offered", 2)


def test_a_join_can_name_the_warehouse_the_units_must_come_from():
    north = WarehouseFactory(code="north")
    stock = stocked(on_hand=5)  # free units elsewhere do not serve a pinned entry
    StockLevel.objects.create(product=stock.product, warehouse=north, on_hand=0)

    _, entry = joined(stock.product.sku, 2, warehouse="north")

    assert entry["warehouse"] == "north"
    assert WaitlistEntry.objects.get(id=entry["id"]).warehouse_id == north.id


def test_joining_an_unknown_sku_answers_product_not_found():
    shopper = Shopper()
    shopper.create_cart()

    error = assert_error(join(shopper, "NO-SUCH-SKU"), 404, "PRODUCT_NOT_FOUND")

    assert error["details"] == {"sku": "NO-SUCH-SKU"}


def test_joining_with_an_unknown_warehouse_answers_as_adding_an_item_does(sold_out):
    shopper = Shopper()
    shopper.create_cart()
    added = assert_error(shopper.add(sold_out.product.sku, 1, warehouse="nowhere"), 404)

    error = assert_error(join(shopper, sold_out.product.sku, warehouse="nowhere"), 404)

    assert error["code"] == added["code"] == "NOT_FOUND"
    assert error["details"] == added["details"] == {"warehouse": "nowhere"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": 1}, "sku"),
        ({"sku": "X"}, "quantity"),
        ({"sku": "X", "quantity": 0}, "quantity"),
        ({"sku": "X", "quantity": 1001}, "quantity"),
        ({"sku": "X", "quantity": "many"}, "quantity"),
        ({"sku": "X" * 65, "quantity": 1}, "sku"),
        ({"sku": "X", "quantity": 1, "warehouse": "w" * 33}, "warehouse"),
    ],
)
def test_a_bad_join_body_answers_validation_error(body, field):
    shopper = Shopper()
    shopper.create_cart()

    response = shopper.call("post", f"carts/{shopper.cart_id}/waitlist/", body)

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["details"]["fields"]


def test_a_product_in_another_currency_cannot_wait_in_the_cart(sold_out):
    euro = stocked(on_hand=0, currency="EUR")
    shopper = Shopper()
    shopper.create_cart()

    error = assert_error(join(shopper, euro.product.sku), 400, "VALIDATION_ERROR")

    assert "sku" in error["details"]["fields"]


def test_a_join_above_the_products_max_per_order_answers_quantity_limit_exceeded():
    limited = stocked(on_hand=0, max_per_order=2)
    shopper = Shopper()
    shopper.create_cart()

    error = assert_error(join(shopper, limited.product.sku, 3), 400, "QUANTITY_LIMIT_EXCEEDED")

    assert error["details"] == {"sku": limited.product.sku, "limit": 2}
    assert join(shopper, limited.product.sku, 2).status_code == 201


@pytest.mark.parametrize("status", [CartStatus.CHECKOUT, CartStatus.COMPLETED])
def test_only_an_active_or_abandoned_cart_can_join(sold_out, status):
    shopper = Shopper()
    shopper.create_cart()
    Cart.objects.filter(id=shopper.cart_id).update(status=status)

    error = assert_error(join(shopper, sold_out.product.sku), 409, "INVALID_CART_STATUS")

    assert error["details"] == {"status": status}
    assert not WaitlistEntry.objects.exists()


def test_an_abandoned_cart_can_join_and_stays_abandoned(sold_out):
    shopper = Shopper()
    shopper.create_cart()
    Cart.objects.filter(id=shopper.cart_id).update(status=CartStatus.ABANDONED)

    assert join(shopper, sold_out.product.sku).status_code == 201
    assert Cart.objects.get(id=shopper.cart_id).status == CartStatus.ABANDONED


def test_a_cart_in_checkout_is_refused_by_the_real_checkout_too(sold_out):
    stock = stocked(on_hand=5)
    cart = cart_in_checkout((stock, 1))
    shopper = Shopper()
    shopper.cart_id, shopper.token = str(cart.id), TOKEN

    error = assert_error(join(shopper, sold_out.product.sku), 409, "INVALID_CART_STATUS")
    assert error["details"] == {"status": "checkout"}


# --- read --------------------------------------------------------------------------------


def test_the_waitlist_of_a_new_cart_is_empty():
    shopper = Shopper()
    shopper.create_cart()

    response = waitlist(shopper)

    assert response.status_code == 200
    assert response.json() == {"entries": []}


def test_the_waitlist_lists_the_carts_entries_newest_first(sold_out):
    other = stocked(on_hand=0)
    shopper, first = joined(sold_out.product.sku, 1)
    second = join(shopper, other.product.sku, 3).json()
    joined(sold_out.product.sku, 1)  # another cart's entry is not listed

    body = waitlist(shopper).json()

    assert [e["id"] for e in body["entries"]] == [second["id"], first["id"]]
    assert all(set(e) == ENTRY_FIELDS for e in body["entries"])
    assert body["entries"][0] == second


def test_positions_count_the_waiting_entries_of_the_product_across_three_carts(
    sold_out, staff_client
):
    sku = sold_out.product.sku
    a, entry_a = joined(sku, 1)
    b, entry_b = joined(sku, 2)
    c, entry_c = joined(sku, 1)
    stocked(on_hand=0)  # another product's queue does not count
    assert [entry_a["position"], entry_b["position"], entry_c["position"]] == [1, 2, 3]

    assert leave(b, entry_b["id"]).status_code == 200
    assert waitlist(a).json()["entries"][0]["position"] == 1
    assert waitlist(c).json()["entries"][0]["position"] == 2

    # One unit comes in: the first entry is offered, the next one moves up.
    staff_client.put("/api/v1/inventory/stock/", {"sku": sku, "on_hand": 1}, format="json")
    [offered] = waitlist(a).json()["entries"]
    assert (offered["status"], offered["position"]) == ("offered", None)
    assert waitlist(c).json()["entries"][0]["position"] == 1
    assert waitlist(b).json()["entries"][0]["position"] is None


def test_reading_the_waitlist_costs_the_same_queries_for_one_or_five_entries(
    django_assert_num_queries,
):
    one, five = Shopper(), Shopper()
    one.create_cart()
    five.create_cart()
    join(one, stocked(on_hand=0).product.sku)
    for _ in range(5):
        join(five, stocked(on_hand=0).product.sku)

    with CaptureQueriesContext(connection) as first:
        assert len(waitlist(one).json()["entries"]) == 1
    count = len(first.captured_queries)
    assert count <= 3, first.captured_queries
    with django_assert_num_queries(count):
        assert len(waitlist(five).json()["entries"]) == 5


# --- leave -------------------------------------------------------------------------------


def test_leaving_a_waiting_entry_cancels_it_and_stops_withholding_its_units():
    stock = stocked(on_hand=1)
    shopper, entry = joined(stock.product.sku, 2)

    response = leave(shopper, entry["id"])

    assert response.status_code == 200
    body = response.json()
    assert set(body) == ENTRY_FIELDS
    assert (body["id"], body["status"], body["position"]) == (entry["id"], "cancelled", None)
    assert StockLevel.objects.get(id=stock.id).waitlisted == 0
    assert Shopper().client.get(f"/api/v1/products/{stock.product_id}/").json()["available"] == 1
    # Leaving again answers the ended entry as it is.
    again = leave(shopper, entry["id"])
    assert (again.status_code, again.json()["status"]) == (200, "cancelled")
    # The cart may wait again: a new entry.
    rejoined = join(shopper, stock.product.sku, 2).json()
    assert rejoined["id"] != entry["id"] and rejoined["position"] == 1


def test_leaving_an_unknown_entry_answers_waitlist_entry_not_found(sold_out):
    shopper, entry = joined(sold_out.product.sku)
    _, other_entry = joined(sold_out.product.sku)

    for entry_id in (entry["id"] + 1000, other_entry["id"], 2**63 + 5):
        error = assert_error(leave(shopper, entry_id), 404, "WAITLIST_ENTRY_NOT_FOUND")
        assert error["details"] == {}
    assert WaitlistEntry.objects.get(id=other_entry["id"]).status == WaitlistStatus.WAITING


# --- access ------------------------------------------------------------------------------


def test_a_missing_or_wrong_token_answers_cart_not_found_on_every_waitlist_endpoint(sold_out):
    shopper, entry = joined(sold_out.product.sku)
    stranger = APIClient()
    base = f"/api/v1/carts/{shopper.cart_id}/waitlist/"
    wrong = {"HTTP_X_CART_TOKEN": "not-the-token"}

    for headers in ({}, wrong):
        assert_error(stranger.get(base, **headers), 404, "CART_NOT_FOUND")
        assert_error(
            stranger.post(
                base, {"sku": sold_out.product.sku, "quantity": 2}, format="json", **headers
            ),
            404,
            "CART_NOT_FOUND",
        )
        # A bad body to a cart the caller may not use reveals nothing either.
        assert_error(
            stranger.post(base, {"quantity": 0}, format="json", **headers), 404, "CART_NOT_FOUND"
        )
        assert_error(stranger.delete(f"{base}{entry['id']}/", **headers), 404, "CART_NOT_FOUND")
    assert_error(
        stranger.get("/api/v1/carts/00000000-0000-0000-0000-000000000000/waitlist/"),
        404,
        "CART_NOT_FOUND",
    )
    stored = WaitlistEntry.objects.get(id=entry["id"])
    assert (stored.status, stored.quantity) == (WaitlistStatus.WAITING, 1)


def test_the_logged_in_owner_uses_the_waitlist_without_the_token(sold_out):
    user = UserFactory()
    client = APIClient()
    client.force_authenticate(user)
    cart_id = client.post("/api/v1/carts/", {}, format="json").json()["id"]
    base = f"/api/v1/carts/{cart_id}/waitlist/"

    created = client.post(base, {"sku": sold_out.product.sku, "quantity": 1}, format="json")
    assert created.status_code == 201
    assert client.get(base).json()["entries"][0]["id"] == created.json()["id"]
    assert client.delete(f"{base}{created.json()['id']}/").json()["status"] == "cancelled"

    other = APIClient()
    other.force_authenticate(UserFactory())
    assert_error(other.get(base), 404, "CART_NOT_FOUND")
