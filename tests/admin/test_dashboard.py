"""The admin opens on the overview (SPEC §13): each figure counts what the filtered list
it links to shows, and the page costs a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from carts.models import CartStatus
from inventory import services
from inventory.models import Reservation
from inventory.services import ReservationLine
from payments.models import Payment, PaymentStatus
from tests.support import cart_in_checkout
from tests.support.factories import CartFactory

pytestmark = pytest.mark.django_db

# Session and user, one COUNT per figure of the overview (11; conversion reuses the
# counts of the day), one aggregate for the waitlist figures, Django's "recent actions":
# nothing per row.
PINNED_QUERIES = 2 + 11 + 1 + 1


def figures(client) -> dict[str, tuple[object, str]]:
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return {
        figure.label: (figure.value, figure.url)
        for section in response.context["overview"]
        for figure in section.figures
    }


def listed(client, url: str) -> set:
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    assert "cl" in response.context, "the link's filter was not applied"
    return {obj.pk for obj in response.context["cl"].result_list}


def stale_payment(cart) -> Payment:
    payment = Payment.objects.create(
        cart=cart,
        gateway="dummy",
        method="card",
        amount=Decimal("5.00"),
        currency="USD",
        status=PaymentStatus.AUTHORIZED,
    )
    ago = timezone.now() - timedelta(hours=1)
    Payment.objects.filter(id=payment.id).update(created_at=ago)
    return payment


def orphan(stock) -> Reservation:
    """A pending hold of an active cart (not in checkout, no order): an orphan."""
    cart = CartFactory(status=CartStatus.ACTIVE)
    [held] = services.reserve(
        lines=[ReservationLine(stock.product_id, stock.warehouse_id, 1)],
        ttl_seconds=600,
        cart_id=cart.id,
    )
    return held


def test_the_admin_index_shows_every_figure_of_the_overview(staff_browser, shop):
    stale = stale_payment(cart_in_checkout((shop.stock_a, 1)))
    orphaned = orphan(shop.stock_a)

    shown = figures(staff_browser)

    assert {label: value for label, (value, _) in shown.items()} == {
        "Low stock": 1,  # EAST-3: 5 on hand, 1 sold, 1 held -> 3 available
        "Out of stock": 0,
        "Lapsed reservations": 1,
        "Orphaned reservations": 1,
        "Captured without order": 1,
        "Refund pending": 0,
        "Stale in flight": 1,
        "Flagged for staff": 0,
        "Payment gateway": "closed",
        "Checkouts in progress": 3,
        "Orders today": 1,
        "Conversion today": "20.0%",  # 1 order of 5 checkouts started today
        "Waiting": 0,
        "Units waited for": 0,
        "Offers open": 0,
        "Offered today": 0,
        "Claimed today": 0,
        "Lapsed today": 0,
    }
    assert stale.status == PaymentStatus.AUTHORIZED and orphaned.status == "pending"


def test_each_figure_links_to_the_list_of_exactly_its_rows(staff_browser, shop):
    stale = stale_payment(cart_in_checkout((shop.stock_a, 1)))
    orphaned = orphan(shop.stock_a)
    shown = figures(staff_browser)

    assert listed(staff_browser, shown["Low stock"][1]) == {shop.stock_east.pk}
    assert listed(staff_browser, shown["Out of stock"][1]) == set()
    assert listed(staff_browser, shown["Lapsed reservations"][1]) == {shop.lapsed.pk}
    assert listed(staff_browser, shown["Orphaned reservations"][1]) == {orphaned.pk}
    assert listed(staff_browser, shown["Captured without order"][1]) == {shop.captured.pk}
    assert listed(staff_browser, shown["Stale in flight"][1]) == {stale.pk}
    assert listed(staff_browser, shown["Refund pending"][1]) == set()
    in_checkout = listed(staff_browser, shown["Checkouts in progress"][1])
    assert {shop.checkout_cart.pk, shop.unpaid_cart.pk, stale.cart_id} == in_checkout
    assert listed(staff_browser, shown["Orders today"][1]) == {shop.order.pk}
    assert len(listed(staff_browser, shown["Conversion today"][1])) == 5


def test_the_overview_shows_the_payment_gateway_breaker(staff_browser, shop):
    response = staff_browser.get(reverse("admin:index"))
    [line] = [
        f
        for section in response.context["overview"]
        for f in section.figures
        if f.label == "Payment gateway"
    ]
    assert (line.value, line.alert) == ("closed", False)
    assert line.help == "closed: payments go through"
    assert listed(staff_browser, line.url) == set(
        Payment.objects.filter(status=PaymentStatus.FAILED).values_list("pk", flat=True)
    )


def test_figures_that_need_attention_are_highlighted(staff_browser, shop):
    page = staff_browser.get(reverse("admin:index")).content.decode()
    assert 'class="shop-figure shop-figure-alert"' in page
    assert 'data-figure="captured-without-order"' in page
    # The app list is still there below the overview.
    assert reverse("admin:inventory_stocklevel_changelist") in page


def test_the_overview_costs_the_same_queries_whatever_the_data(staff_browser, shop):
    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            staff_browser.get(reverse("admin:index"))
        return len(queries)

    before = cost()
    for _ in range(5):
        orphan(shop.stock_a)
        stale_payment(cart_in_checkout((shop.stock_b, 1)))
    assert cost() == before
    assert before == PINNED_QUERIES, before
