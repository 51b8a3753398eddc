"""Orders in the admin: status actions along the chain with a note, notes, the timeline
inline, a confirmation page before every destructive action, and pages people can read
(addresses as addresses, times to the second, holds' countdown, distinct filter titles,
human titles)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from carts.models import Cart
from inventory.models import Reservation
from orders.models import Order
from tests.support import numbers

pytestmark = pytest.mark.django_db

ORDERS = reverse("admin:orders_order_changelist")


def run(client, url: str, action: str, objects, **extra):
    """Posts an action twice, as a person does: the page it shows, then its confirmation."""
    data = {"action": action, "_selected_action": [str(o.pk) for o in objects]}
    page = client.post(url, data)
    assert page.status_code == 200
    assert "admin/shop_confirm_action.html" in [t.name for t in page.templates]
    done = client.post(url, {**data, "confirmed": "yes", **extra}, follow=True)
    assert done.status_code == 200
    return page, [str(m) for m in done.context["messages"]]


def timeline(order: Order) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.note) for e in order.events.order_by("at", "id")]


def test_staff_move_an_order_along_the_chain_with_notes(staff_browser, shop):
    order = shop.order
    for action, note in (
        ("mark_confirmed", ""),
        ("mark_processing", "packed"),
        ("mark_shipped", "DHL 0042"),
        ("mark_delivered", ""),
    ):
        page, said = run(staff_browser, ORDERS, action, [order], note=note)
        assert 'name="note"' in page.content.decode()
        assert said[0].startswith("Moved 1 order(s) to ")
    order.refresh_from_db()
    assert order.status == "delivered"
    actor = "admin:ops-admin"
    assert timeline(order) == [
        (actor, "status:pending→confirmed", ""),
        (actor, "status:confirmed→processing", "packed"),
        (actor, "status:processing→shipped", "DHL 0042"),
        (actor, "status:shipped→delivered", ""),
    ]
    change = staff_browser.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert "DHL 0042" in change.content.decode()


def test_a_move_the_chain_does_not_allow_is_refused_and_says_so(staff_browser, shop):
    _, said = run(staff_browser, ORDERS, "mark_shipped", [shop.order])
    shop.order.refresh_from_db()
    assert shop.order.status == "pending"
    assert said == [
        f"Not moved: {shop.order.number}: An order in status 'pending' cannot move to 'shipped'"
    ]
    assert timeline(shop.order) == []


def test_staff_add_a_note_to_orders(staff_browser, shop):
    _, said = run(staff_browser, ORDERS, "add_note", [shop.order], note="called the shopper")
    assert said == [f"Added the note to 1 order(s): {shop.order.number}."]
    assert timeline(shop.order) == [("admin:ops-admin", "note", "called the shopper")]


def test_an_empty_note_is_not_added(staff_browser, shop):
    data = {"action": "add_note", "_selected_action": [str(shop.order.pk)], "confirmed": "yes"}
    response = staff_browser.post(ORDERS, {**data, "note": "  "})
    assert response.status_code == 200  # the note page again
    assert timeline(shop.order) == []


@pytest.mark.parametrize(
    ("model", "action", "rows", "says"),
    [
        (Order, "cancel_orders", lambda s: [s.order], "This cannot be undone"),
        (Reservation, "release_selected", lambda s: s.pending_of(s.checkout_cart), "release"),
        (Reservation, "expire_now", lambda s: [s.lapsed], "expire each selected"),
        (Cart, "cancel_checkout", lambda s: [s.checkout_cart], "back to active"),
        (Cart, "abandon_checkout", lambda s: [s.checkout_cart], "mark the cart abandoned"),
    ],
)
def test_destructive_actions_ask_first_and_change_nothing_until_confirmed(
    staff_browser, shop, model, action, rows, says
):
    meta = model._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    selected = rows(shop)
    before = (numbers(shop.stock_a), numbers(shop.stock_b), numbers(shop.stock_east))
    statuses = [type(o).objects.get(pk=o.pk).status for o in selected]

    page = staff_browser.post(url, {"action": action, "_selected_action": [o.pk for o in selected]})

    assert page.status_code == 200
    text = page.content.decode()
    assert says in text
    assert 'name="confirmed" value="yes"' in text
    for obj in selected:
        assert f'value="{obj.pk}"' in text
    assert (numbers(shop.stock_a), numbers(shop.stock_b), numbers(shop.stock_east)) == before
    assert [type(o).objects.get(pk=o.pk).status for o in selected] == statuses


def test_cancel_through_the_confirmation_records_the_cancel(staff_browser, shop):
    _, said = run(staff_browser, ORDERS, "cancel_orders", [shop.order])
    shop.order.refresh_from_db()
    assert shop.order.status == "cancelled"
    assert timeline(shop.order)[0] == ("admin:ops-admin", "cancelled", "")
    assert said[0].startswith("Cancelled 1 order(s)")


# --- readable pages ------------------------------------------------------------------------


def test_the_order_page_shows_addresses_times_to_the_second_and_the_timeline(staff_browser, shop):
    page = staff_browser.get(reverse("admin:orders_order_change", args=[shop.order.pk]))
    text = page.content.decode()
    assert "<address class='shop-address'>" in text
    assert "United Kingdom (GB)" in text
    assert '"line1"' not in text and "{&#x27;" not in text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text)
    assert "timeline" in text.lower()


def test_the_orders_list_filters_have_distinct_titles(staff_browser, shop):
    response = staff_browser.get(ORDERS)
    titles = [spec.title for spec in response.context["cl"].filter_specs]
    assert len(titles) == len(set(titles))
    assert {"order status", "payment status"} <= set(titles)


def test_stock_levels_and_reservations_have_human_titles(staff_browser, shop):
    assert str(shop.stock_east) == "EAST-3 @ east"
    held = shop.internal
    assert str(held) == f"#{held.pk}: 1 x EAST-3 @ east (pending)"
    page = staff_browser.get(
        reverse("admin:inventory_stocklevel_change", args=[shop.stock_east.pk])
    )
    assert "EAST-3 @ east" in page.content.decode()


def test_pending_holds_show_their_countdown(staff_browser, shop):
    response = staff_browser.get(
        reverse("admin:inventory_reservation_changelist"), {"status__exact": "pending"}
    )
    text = response.content.decode()
    assert re.search(r"\b(9|10)m \d{1,2}s\b", text), "the internal 10-minute hold's time left"
    assert re.search(r"lapsed 2m \d{1,2}s ago", text), "the lapsed hold's time since expiry"


def test_carts_in_checkout_show_their_countdown_and_addresses(staff_browser, shop):
    listed = staff_browser.get(
        reverse("admin:carts_cart_changelist"), {"status__exact": "checkout"}
    ).content.decode()
    assert re.search(r"\b\d{1,2}m \d{1,2}s\b", listed), "time left of the checkout's holds"
    page = staff_browser.get(reverse("admin:carts_cart_change", args=[shop.checkout_cart.pk]))
    text = page.content.decode()
    assert "<address class='shop-address'>" in text
    assert "SW1Y 4JH London" in text
