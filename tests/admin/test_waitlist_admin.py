"""The waitlist entries in the admin (SPEC §15): listed by sku in queue order with their
positions, filtered by status, date and product, searched by sku; read-only, with one
action that cancels through ``inventory.waitlist.leave``; and the overview's waitlist
figures, each linking to exactly the entries it counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from checkout.services import start_checkout
from inventory import services, waitlist
from inventory.models import (
    Product,
    Reservation,
    ReservationStatus,
    StockLevel,
    WaitlistEntry,
    WaitlistStatus,
)
from tests.support import assert_stock_invariants, stocked
from tests.support.factories import CartFactory

pytestmark = pytest.mark.django_db

LIST = reverse("admin:inventory_waitlistentry_changelist")


def change_url(entry: WaitlistEntry) -> str:
    return reverse("admin:inventory_waitlistentry_change", args=[entry.pk])


def join(product: Product, quantity: int = 1) -> WaitlistEntry:
    return waitlist.join(
        cart_id=CartFactory().id, product=product, warehouse=None, quantity=quantity, actor="t"
    ).entry


def hold_of(entry: WaitlistEntry) -> Reservation:
    return Reservation.objects.get(waitlist_entry_id=entry.id)


def lapsed(reservation: Reservation) -> int:
    """Moves the hold's expiry into the past; returns its id."""
    Reservation.objects.filter(id=reservation.id).update(
        expires_at=timezone.now() - timedelta(seconds=5)
    )
    return reservation.id


@dataclass
class Queues:
    alpha: Product
    bravo: Product
    a1: WaitlistEntry  # waiting, position 1 (2 units)
    a2: WaitlistEntry  # waiting, position 2
    a3: WaitlistEntry  # cancelled (left)
    b1: WaitlistEntry  # claimed (its cart started checkout with the offer)
    b2: WaitlistEntry  # expired (the offer lapsed; its unit passed to b4)
    b3: WaitlistEntry  # offered
    b4: WaitlistEntry  # offered (b2's unit)

    def refresh(self) -> None:
        for name in ("a1", "a2", "a3", "b1", "b2", "b3", "b4"):
            getattr(self, name).refresh_from_db()


@pytest.fixture
def queues() -> Queues:
    alpha = stocked(on_hand=0, sku="ALPHA-W").product
    bravo_row = stocked(on_hand=0, sku="BRAVO-W")
    bravo = bravo_row.product
    a1, a2, a3 = join(alpha, 2), join(alpha), join(alpha)
    b1, b2, b3, b4 = (join(bravo) for _ in range(4))
    services.set_stock(product=bravo, warehouse=bravo_row.warehouse, on_hand=3, actor="t")
    start_checkout(cart_id=b1.cart_id, actor="t")
    # b2's offer lapses and is expired: its unit passes to b4.
    services.expire(reservation_ids=[lapsed(hold_of(b2))], actor="t")
    waitlist.leave(cart_id=a3.cart_id, entry_id=a3.id, actor="t")
    q = Queues(alpha, bravo, a1, a2, a3, b1, b2, b3, b4)
    q.refresh()
    assert [e.status for e in (q.a1, q.a2, q.a3, q.b1, q.b2, q.b3, q.b4)] == [
        "waiting",
        "waiting",
        "cancelled",
        "claimed",
        "expired",
        "offered",
        "offered",
    ]
    return q


def listed(client, params: dict[str, str] | None = None) -> list[int]:
    response = client.get(LIST, params or {})
    assert response.status_code == 200, response.content[:500]
    assert "cl" in response.context, "the changelist was not rendered (bad filter?)"
    return [obj.pk for obj in response.context["cl"].result_list]


def test_entries_are_listed_by_sku_in_queue_order_with_their_positions(staff_browser, queues):
    q = queues
    response = staff_browser.get(LIST)
    rows = response.context["cl"].result_list
    assert [e.pk for e in rows] == [e.pk for e in (q.a1, q.a2, q.a3, q.b1, q.b2, q.b3, q.b4)]
    model_admin = response.context["cl"].model_admin
    assert [model_admin.position(e) for e in rows] == [1, 2, "-", "-", "-", "-", "-"]
    page = response.content.decode()
    assert reverse("admin:carts_cart_change", args=[q.a1.cart_id]) in page
    b3_hold = hold_of(q.b3)
    assert reverse("admin:inventory_reservation_change", args=[b3_hold.id]) in page
    assert model_admin.offer_time_left(next(e for e in rows if e.pk == q.b3.pk)).startswith("4m")
    assert model_admin.warehouse_shown(rows[0]) == "any"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "waiting"}, ("a1", "a2")),
        ({"status__exact": "offered"}, ("b3", "b4")),
        ({"status__exact": "claimed"}, ("b1",)),
        ({"status__exact": "expired"}, ("b2",)),
        ({"status__exact": "cancelled"}, ("a3",)),
        ({"q": "BRAVO"}, ("b1", "b2", "b3", "b4")),
        ({"q": "alpha-w"}, ("a1", "a2", "a3")),
    ],
)
def test_filters_and_sku_search_show_exactly_their_entries(staff_browser, queues, params, expected):
    assert listed(staff_browser, params) == [getattr(queues, name).pk for name in expected]


def test_product_filter_and_search_by_cart(staff_browser, queues):
    assert listed(staff_browser, {"product__id__exact": str(queues.alpha.id)}) == [
        queues.a1.pk,
        queues.a2.pk,
        queues.a3.pk,
    ]
    assert listed(staff_browser, {"q": str(queues.b3.cart_id)}) == [queues.b3.pk]


def test_the_list_costs_the_same_queries_whatever_the_number_of_entries(staff_browser, queues):
    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff_browser.get(LIST).status_code == 200
        return len(queries)

    before = cost()
    for _ in range(10):
        join(queues.alpha)
    services.set_stock(
        product=queues.bravo,
        warehouse=StockLevel.objects.get(product=queues.bravo).warehouse,
        on_hand=20,
        actor="t",
    )
    assert WaitlistEntry.objects.count() == 17
    assert cost() == before


def test_entries_are_read_only(staff_browser, queues):
    response = staff_browser.get(change_url(queues.b3))
    assert response.status_code == 200
    page = response.content.decode()
    assert "offer holds" in page.lower()
    assert 'name="quantity"' not in page and 'name="status"' not in page
    assert staff_browser.post(change_url(queues.b3), {"quantity": 9}).status_code == 403
    assert staff_browser.get(reverse("admin:inventory_waitlistentry_add")).status_code == 403
    delete = reverse("admin:inventory_waitlistentry_delete", args=[queues.b3.pk])
    assert staff_browser.post(delete, {"post": "yes"}).status_code == 403
    queues.b3.refresh_from_db()
    assert (queues.b3.quantity, queues.b3.status) == (1, "offered")


def act(client, ids: list[int], *, confirmed: bool):
    data = {"action": "cancel_entries", ACTION_CHECKBOX_NAME: [str(i) for i in ids]}
    if confirmed:
        data["confirmed"] = "yes"
    return client.post(LIST, data, follow=confirmed)


def test_cancel_asks_first_then_goes_through_the_waitlist(staff_browser, queues):
    q = queues
    page = act(staff_browser, [q.a1.pk, q.b3.pk, q.b1.pk], confirmed=False)
    assert page.status_code == 200
    assert "Cancel waitlist entries" in page.content.decode()
    q.refresh()
    assert (q.a1.status, q.b3.status) == ("waiting", "offered")  # nothing changed yet
    b3_hold = hold_of(q.b3)
    newcomer = join(q.bravo)  # waits behind nobody: b3's unit will pass to it

    response = act(staff_browser, [q.a1.pk, q.b3.pk, q.b1.pk], confirmed=True)

    said = [str(m) for m in response.context["messages"]]
    assert said == ["Cancelled 2 entry(ies)."]
    q.refresh()
    assert (q.a1.status, q.b3.status, q.b1.status) == ("cancelled", "cancelled", "claimed")
    assert listed(staff_browser, {"status__exact": "waiting"}) == [q.a2.pk]
    b3_hold.refresh_from_db()
    assert b3_hold.status == ReservationStatus.RELEASED
    assert b3_hold.events.filter(kind="released").get().actor == "admin:ops-admin"
    newcomer.refresh_from_db()
    assert newcomer.status == WaitlistStatus.OFFERED
    assert set(StockLevel.objects.filter(product=q.alpha).values_list("waitlisted", flat=True)) == {
        1
    }
    assert_stock_invariants()


def test_a_viewer_sees_the_entries_but_cannot_cancel(viewer_browser, queues):
    response = viewer_browser.get(LIST)
    assert response.status_code == 200
    assert "cancel_entries" not in response.content.decode()
    viewer_browser.post(
        LIST,
        {"action": "cancel_entries", ACTION_CHECKBOX_NAME: [str(queues.a1.pk)], "confirmed": "yes"},
    )
    queues.a1.refresh_from_db()
    assert queues.a1.status == WaitlistStatus.WAITING


# --- the overview ---------------------------------------------------------------------


def overview_figures(client) -> dict[str, tuple[object, str]]:
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    [section] = [s for s in response.context["overview"] if s.title == "Waitlists"]
    return {figure.label: (figure.value, figure.url) for figure in section.figures}


def test_the_overview_counts_the_waitlists_and_links_to_their_entries(staff_browser, queues):
    q = queues
    shown = overview_figures(staff_browser)

    assert {label: value for label, (value, _) in shown.items()} == {
        "Waiting": 2,
        "Units waited for": 3,
        "Offers open": 2,
        "Offered today": 4,
        "Claimed today": 1,
        "Lapsed today": 1,
    }

    def linked(label: str) -> set[int]:
        response = staff_browser.get(shown[label][1])
        assert response.status_code == 200
        assert "cl" in response.context, "the link's filter was not applied"
        return {e.pk for e in response.context["cl"].result_list}

    assert linked("Waiting") == linked("Units waited for") == {q.a1.pk, q.a2.pk}
    assert linked("Offers open") == {q.b3.pk, q.b4.pk}
    assert linked("Offered today") == {q.b1.pk, q.b2.pk, q.b3.pk, q.b4.pk}
    assert linked("Claimed today") == {q.b1.pk}
    assert linked("Lapsed today") == {q.b2.pk}
