"""Freed units reach the waitlist through the API (SPEC §15, API.md "Waitlists"): withheld
from everyone else while entries wait, offered in the request that frees them (checkout
cancel, line removal, order cancel, a stock increase, the expiry sweeper, an offer given
up or lapsed), strictly first come first served, the offered line put in the cart, and
claimed by starting checkout with the offered hold; with several warehouses too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from carts.models import Cart
from inventory import cleanup
from inventory.models import (
    Reservation,
    ReservationStatus,
    StockLevel,
    WaitlistEntry,
    WaitlistStatus,
)
from tests.support import (
    API,
    TOKEN,
    Shopper,
    assert_error,
    assert_stock_invariants,
    lapse,
    paid_order,
    stocked,
)
from tests.support.factories import WarehouseFactory

pytestmark = pytest.mark.django_db


def join(shopper: Shopper, sku: str, quantity: int = 1, **extra):
    body = {"sku": sku, "quantity": quantity, **extra}
    return shopper.call("post", f"carts/{shopper.cart_id}/waitlist/", body)


def entries(shopper: Shopper) -> list[dict]:
    response = shopper.call("get", f"carts/{shopper.cart_id}/waitlist/")
    assert response.status_code == 200, response.content
    return response.json()["entries"]


def the_entry(shopper: Shopper) -> dict:
    [entry] = entries(shopper)
    return entry


def waiting(sku: str, quantity: int = 1, **extra) -> Shopper:
    """A shopper with an empty cart waiting for ``quantity`` of ``sku``."""
    shopper = Shopper()
    shopper.create_cart()
    response = join(shopper, sku, quantity, **extra)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "waiting"
    return shopper


def in_checkout(*lines: tuple[str, int]) -> Shopper:
    """A shopper whose cart holds ``lines`` in checkout (reserved)."""
    shopper = Shopper()
    shopper.cart_with(*lines)
    response = shopper.start()
    assert response.status_code == 201, response.content
    return shopper


def public_available(stock: StockLevel) -> int:
    return APIClient().get(f"{API}/products/{stock.product_id}/").json()["available"]


def put_stock(staff_client, sku: str, on_hand: int, **extra):
    response = staff_client.put(
        f"{API}/inventory/stock/", {"sku": sku, "on_hand": on_hand, **extra}, format="json"
    )
    assert response.status_code == 200, response.content
    return response


def offer_of(entry: dict) -> list[Reservation]:
    """The pending reservations that hold an entry's offer, first first."""
    return list(
        Reservation.objects.filter(
            waitlist_entry_id=entry["id"], status=ReservationStatus.PENDING
        ).order_by("id")
    )


def assert_offered(shopper: Shopper, quantity: int) -> dict:
    """The shopper's one entry is offered: held for the cart, the line in the cart."""
    entry = the_entry(shopper)
    assert entry["status"] == "offered", entry
    assert entry["position"] is None
    held = offer_of(entry)
    assert sum(r.quantity for r in held) == quantity
    assert entry["reservation_id"] == held[0].id
    assert {str(r.cart_id) for r in held} == {shopper.cart_id}
    expires = timezone.datetime.fromisoformat(entry["offer_expires_at"])
    assert {r.expires_at for r in held} == {expires}
    ttl = (expires - timezone.now()).total_seconds()
    assert 0 < ttl <= settings.WAITLIST_OFFER_TTL_SECONDS
    [line] = [i for i in shopper.cart().json()["items"] if i["sku"] == entry["sku"]]
    assert line["quantity"] == quantity
    return entry


# --- withholding ---------------------------------------------------------------------------


def test_units_wanted_by_a_waiting_entry_are_withheld_from_other_shoppers():
    stock = stocked(on_hand=3)
    sku = stock.product.sku
    in_checkout((sku, 2))  # 1 left free
    waiting(sku, 2)  # wants 2: the free unit is kept for it

    late = Shopper()
    late.cart_with((sku, 1))
    error = assert_error(late.start(), 400, "INSUFFICIENT_STOCK")

    assert error["details"]["items"][0]["available"] == 0
    assert public_available(stock) == 0
    [line] = late.validate_stock().json()["items"]
    assert (line["available"], line["status"]) == (0, "out_of_stock")
    product_list = APIClient().get(f"{API}/products/", {"sku": sku}).json()
    assert product_list["results"][0]["available"] == 0
    assert_stock_invariants()


def test_public_available_is_what_is_free_less_what_the_queue_wants(staff_client):
    stock = stocked(on_hand=0)
    sku = stock.product.sku
    waiting(sku, 2)

    put_stock(staff_client, sku, 1)  # not enough for the whole entry: it keeps waiting
    assert public_available(stock) == 0

    put_stock(staff_client, sku, 5)  # the entry is offered its 2: 3 left for everyone
    assert public_available(stock) == 3


# --- freed units are offered in the request that frees them ---------------------------------


def test_checkout_cancel_of_another_cart_offers_the_units_and_checkout_claims_the_offer():
    stock = stocked(on_hand=2)
    sku = stock.product.sku
    holder = in_checkout((sku, 2))
    shopper = waiting(sku, 2)

    assert holder.cancel().status_code == 200

    entry = assert_offered(shopper, 2)
    [line] = shopper.cart().json()["items"]
    assert (line["sku"], line["warehouse"]) == (sku, None)
    checked = shopper.validate_stock().json()
    assert checked["ok"] is True
    assert (checked["items"][0]["reserved"], checked["items"][0]["available"]) == (2, 2)
    # The holder, back in its cart, cannot take them.
    assert_error(holder.start(), 400, "INSUFFICIENT_STOCK")

    started = shopper.start()

    assert started.status_code == 201, started.content
    state = started.json()
    assert state["reservation_ids"] == [entry["reservation_id"]]
    claimed = the_entry(shopper)
    assert (claimed["status"], claimed["position"]) == ("claimed", None)
    assert claimed["reservation_id"] == entry["reservation_id"]
    assert Reservation.objects.get(id=entry["reservation_id"]).status == ReservationStatus.PENDING
    assert Cart.objects.get(id=shopper.cart_id).expires_at == timezone.datetime.fromisoformat(
        entry["offer_expires_at"]
    )
    assert_stock_invariants()


def test_an_offered_line_already_in_the_cart_is_kept_and_checkout_uses_the_offer():
    stock = stocked(on_hand=2)
    sku = stock.product.sku
    holder = in_checkout((sku, 2))
    shopper = Shopper()
    shopper.cart_with((sku, 2))
    assert_error(shopper.start(), 400, "INSUFFICIENT_STOCK")
    assert join(shopper, sku, 2).status_code == 201

    holder.cancel()

    entry = assert_offered(shopper, 2)
    assert len(shopper.cart().json()["items"]) == 1
    assert shopper.start().json()["reservation_ids"] == [entry["reservation_id"]]
    assert the_entry(shopper)["status"] == "claimed"


def test_removing_a_line_during_checkout_offers_its_units(staff_client):
    first, second = stocked(on_hand=1), stocked(on_hand=5)
    holder = in_checkout((first.product.sku, 1), (second.product.sku, 1))
    shopper = waiting(first.product.sku, 1)
    [line] = [i for i in holder.cart().json()["items"] if i["sku"] == first.product.sku]

    assert holder.remove(line["id"]).status_code == 200

    assert_offered(shopper, 1)
    assert_stock_invariants()


def test_cancelling_an_order_restocks_and_offers_the_units(api_client):
    stock = stocked(on_hand=2)
    order = paid_order((stock, 2))
    shopper = waiting(stock.product.sku, 2)

    response = api_client.post(
        f"{API}/orders/{order.id}/cancel/", {}, format="json", HTTP_X_CART_TOKEN=TOKEN
    )

    assert response.status_code == 200, response.content
    assert_offered(shopper, 2)
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved, stock.waitlisted) == (2, 2, 0)
    assert_stock_invariants()


def test_a_stock_increase_offers_the_units_in_the_same_request(staff_client):
    stock = stocked(on_hand=0)
    shopper = waiting(stock.product.sku, 2)

    body = put_stock(staff_client, stock.product.sku, 2).json()

    assert (body["reserved"], body["available"]) == (2, 0)
    assert_offered(shopper, 2)
    assert_stock_invariants()


def test_the_expiry_sweeper_offers_the_units_of_lapsed_holds():
    stock = stocked(on_hand=1)
    holder = in_checkout((stock.product.sku, 1))
    shopper = waiting(stock.product.sku, 1)
    lapse(carts=[Cart.objects.get(id=holder.cart_id)])

    run = cleanup.expire_reservations(batch_size=100)

    assert run.done == 1
    assert_offered(shopper, 1)
    assert_stock_invariants()


def test_offers_go_strictly_in_join_order_each_for_its_whole_quantity(staff_client):
    stock = stocked(on_hand=0)
    sku = stock.product.sku
    big, small = waiting(sku, 3), waiting(sku, 1)

    put_stock(staff_client, sku, 2)  # enough for the second entry only: nobody passes

    assert [the_entry(big)["status"], the_entry(small)["status"]] == ["waiting", "waiting"]
    assert public_available(stock) == 0

    put_stock(staff_client, sku, 4)

    assert_offered(big, 3)
    assert_offered(small, 1)
    assert public_available(stock) == 0


# --- an offer given up or lapsed passes on ----------------------------------------------------


def test_leaving_an_offered_entry_passes_its_units_to_the_next_one(staff_client):
    stock = stocked(on_hand=0)
    sku = stock.product.sku
    first, second = waiting(sku, 2), waiting(sku, 2)
    put_stock(staff_client, sku, 2)
    offered = assert_offered(first, 2)

    response = first.call("delete", f"carts/{first.cart_id}/waitlist/{offered['id']}/")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["position"]) == ("cancelled", None)
    assert Reservation.objects.get(id=offered["reservation_id"]).status == "released"
    assert_offered(second, 2)
    assert_stock_invariants()


def test_removing_an_offered_line_from_an_active_cart_passes_its_units_on(staff_client):
    stock = stocked(on_hand=0)
    sku = stock.product.sku
    first, second = waiting(sku, 2), waiting(sku, 2)
    put_stock(staff_client, sku, 2)
    offered = assert_offered(first, 2)
    [line] = first.cart().json()["items"]

    response = first.call("delete", f"carts/{first.cart_id}/items/{line['id']}/")

    assert response.status_code == 200, response.content
    assert Reservation.objects.get(id=offered["reservation_id"]).status == "released"
    assert the_entry(first)["status"] == "cancelled"
    assert_offered(second, 2)
    assert_stock_invariants()


def test_a_lapsed_offer_expires_and_the_sweeper_offers_the_units_to_the_next_entry(
    staff_client, time_machine
):
    stock = stocked(on_hand=0)
    sku = stock.product.sku
    first, second = waiting(sku, 1), waiting(sku, 1)
    put_stock(staff_client, sku, 1)
    offered = assert_offered(first, 1)

    time_machine.move_to(
        timezone.now() + timedelta(seconds=settings.WAITLIST_OFFER_TTL_SECONDS + 1)
    )
    cleanup.expire_reservations(batch_size=100)

    lapsed = the_entry(first)
    assert (lapsed["status"], lapsed["reservation_id"]) == ("expired", offered["reservation_id"])
    assert Reservation.objects.get(id=offered["reservation_id"]).status == "expired"
    assert_offered(second, 1)
    # The first shopper's checkout can no longer use the lapsed offer.
    assert_error(first.start(), 400, "INSUFFICIENT_STOCK")
    assert_stock_invariants()


def test_a_lapsed_offer_is_reclaimed_by_the_next_request_on_the_product(staff_client, time_machine):
    stock = stocked(on_hand=0)
    sku = stock.product.sku
    first, second = waiting(sku, 1), waiting(sku, 1)
    put_stock(staff_client, sku, 1)
    offered = assert_offered(first, 1)
    time_machine.move_to(
        timezone.now() + timedelta(seconds=settings.WAITLIST_OFFER_TTL_SECONDS + 1)
    )

    # No sweeper ran: a third shopper joining the queue reclaims the lapsed hold first.
    third = waiting(sku, 1)

    assert the_entry(first)["status"] == "expired"
    assert Reservation.objects.get(id=offered["reservation_id"]).status == "expired"
    assert_offered(second, 1)
    assert the_entry(third)["position"] == 1
    assert_stock_invariants()


def test_a_cart_that_went_to_checkout_gives_its_turn_up(staff_client):
    wanted, other = stocked(on_hand=0), stocked(on_hand=5)
    shopper = waiting(wanted.product.sku, 1)
    assert shopper.add(other.product.sku, 1).status_code == 201
    assert shopper.start().status_code == 201  # paying for other lines now
    behind = waiting(wanted.product.sku, 1)

    put_stock(staff_client, wanted.product.sku, 1)

    assert the_entry(shopper)["status"] == "cancelled"
    assert [i["sku"] for i in shopper.cart().json()["items"]] == [other.product.sku]
    assert_offered(behind, 1)
    assert_stock_invariants()


# --- several warehouses ---------------------------------------------------------------------


def test_an_unpinned_entry_is_offered_units_from_two_warehouses_and_claims_both():
    stock = stocked(on_hand=1)
    north = WarehouseFactory(code="north", priority=5)
    StockLevel.objects.create(product=stock.product, warehouse=north, on_hand=1)
    sku = stock.product.sku
    holder = in_checkout((sku, 2))  # holds one unit in each warehouse
    shopper = waiting(sku, 2)

    holder.cancel()

    entry = assert_offered(shopper, 2)
    held = offer_of(entry)
    assert sorted(r.warehouse.code for r in held) == ["default", "north"]
    state = shopper.start().json()
    assert sorted(state["reservation_ids"]) == sorted(r.id for r in held)
    assert sorted(a["warehouse"] for a in state["allocations"]) == ["default", "north"]
    assert the_entry(shopper)["status"] == "claimed"
    assert_stock_invariants()


def test_a_pinned_entry_is_offered_units_only_from_its_warehouse():
    stock = stocked(on_hand=1)
    north = WarehouseFactory(code="north", priority=5)
    StockLevel.objects.create(product=stock.product, warehouse=north, on_hand=1)
    sku = stock.product.sku
    holds_default = in_checkout((sku, 1))
    holds_north = Shopper()
    holds_north.create_cart()
    assert holds_north.add(sku, 1, warehouse="north").status_code == 201
    assert holds_north.start().status_code == 201
    pinned = waiting(sku, 1, warehouse="north")
    behind = waiting(sku, 1)

    holds_default.cancel()  # a unit in the default warehouse: not the pinned entry's

    assert the_entry(pinned)["status"] == "waiting"
    # Strictly in order: the entry behind does not pass the pinned one.
    assert the_entry(behind)["status"] == "waiting"
    assert public_available(stock) == 0

    holds_north.cancel()

    entry = assert_offered(pinned, 1)
    assert [r.warehouse.code for r in offer_of(entry)] == ["north"]
    assert [i["warehouse"] for i in pinned.cart().json()["items"]] == ["north"]
    behind_entry = assert_offered(behind, 1)
    assert [r.warehouse.code for r in offer_of(behind_entry)] == ["default"]
    assert_stock_invariants()
    assert WaitlistEntry.objects.filter(status=WaitlistStatus.WAITING).count() == 0
