"""Every admin page of the shop opens for staff, with each filter and search applied, and
shows exactly the rows it should; stock numbers, reservation, cart, order and payment
statuses are read-only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from carts.models import Cart
from checkout.models import IdempotencyKey
from inventory.models import Product, Reservation, ReservationEvent, StockLevel, Warehouse
from orders.models import Order
from payments.models import Payment
from tests.support import Shop, build_shop, cart_in_checkout, paid_order, stocked

pytestmark = pytest.mark.django_db


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change(obj) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def shown(client, model, params: dict[str, str]) -> set:
    response = client.get(changelist(model), params)
    assert response.status_code == 200, response.content[:500]
    assert "cl" in response.context, "the changelist was not rendered (bad filter?)"
    return {obj.pk for obj in response.context["cl"].result_list}


def reservations(**filters) -> set[int]:
    return set(Reservation.objects.filter(**filters).values_list("id", flat=True))


# (model, query parameters, expected primary keys) for every filter and search.
CASES: list[tuple[str, type, Callable[[Shop], dict[str, str]], Callable[[Shop], set]]] = [
    # --- reservations
    ("all reservations", Reservation, lambda s: {}, lambda s: reservations()),
    (
        "pending",
        Reservation,
        lambda s: {"status__exact": "pending"},
        lambda s: reservations(status="pending"),
    ),
    ("lapsed", Reservation, lambda s: {"expired": "yes"}, lambda s: {s.lapsed.id}),
    (
        "not lapsed",
        Reservation,
        lambda s: {"expired": "no"},
        lambda s: reservations() - {s.lapsed.id},
    ),
    (
        "by product",
        Reservation,
        lambda s: {"product__id__exact": str(s.stock_east.product_id)},
        lambda s: reservations(product=s.stock_east.product),
    ),
    (
        "by warehouse",
        Reservation,
        lambda s: {"warehouse__id__exact": str(s.stock_east.warehouse_id)},
        lambda s: reservations(warehouse__code="east"),
    ),
    (
        "by release reason",
        Reservation,
        lambda s: {"release_reason": "checkout_abandoned"},
        lambda s: reservations(cart=s.abandoned_cart),
    ),
    (
        "search sku",
        Reservation,
        lambda s: {"q": "alpha-1"},
        lambda s: reservations(product__sku="ALPHA-1"),
    ),
    (
        "search cart id",
        Reservation,
        lambda s: {"q": str(s.checkout_cart.id)},
        lambda s: reservations(cart=s.checkout_cart),
    ),
    (
        "search order number",
        Reservation,
        lambda s: {"q": s.order.number},
        lambda s: reservations(order=s.order),
    ),
    (
        "pending and lapsed",
        Reservation,
        lambda s: {"status__exact": "pending", "expired": "yes"},
        lambda s: {s.lapsed.id},
    ),
    # --- carts
    (
        "carts in checkout",
        Cart,
        lambda s: {"status__exact": "checkout"},
        lambda s: {s.checkout_cart.id, s.unpaid_cart.id},
    ),
    (
        "abandoned carts",
        Cart,
        lambda s: {"status__exact": "abandoned"},
        lambda s: {s.abandoned_cart.id},
    ),
    (
        "completed carts",
        Cart,
        lambda s: {"status__exact": "completed"},
        lambda s: {s.order.cart_id},
    ),
    (
        "carts not lapsed",
        Cart,
        lambda s: {"expired": "no"},
        lambda s: {s.checkout_cart.id, s.unpaid_cart.id},
    ),
    ("carts lapsed", Cart, lambda s: {"expired": "yes"}, lambda s: set()),
    (
        "search cart id",
        Cart,
        lambda s: {"q": str(s.checkout_cart.id)},
        lambda s: {s.checkout_cart.id},
    ),
    ("search cart by order", Cart, lambda s: {"q": s.order.number}, lambda s: {s.order.cart_id}),
    (
        "carts started this year",
        Cart,
        lambda s: {"created_at__year": str(timezone.now().year)},
        lambda s: set(Cart.objects.values_list("id", flat=True)),
    ),
    # --- payments
    (
        "captured without order",
        Payment,
        lambda s: {"captured_without_order": "yes"},
        lambda s: {s.captured.id},
    ),
    (
        "captured",
        Payment,
        lambda s: {"status__exact": "captured"},
        lambda s: {s.captured.id, s.order.payments.get().id},
    ),
    (
        "needs attention",
        Payment,
        lambda s: {"needs_attention__exact": "1"},
        lambda s: set(),
    ),
    (
        "payment by order number",
        Payment,
        lambda s: {"q": s.order.number},
        lambda s: {s.order.payments.get().id},
    ),
    (
        "payment by cart id",
        Payment,
        lambda s: {"q": str(s.unpaid_cart.id)},
        lambda s: {s.captured.id},
    ),
    # --- orders
    ("pending orders", Order, lambda s: {"status__exact": "pending"}, lambda s: {s.order.id}),
    ("cancelled orders", Order, lambda s: {"status__exact": "cancelled"}, lambda s: set()),
    (
        "orders by payment status",
        Order,
        lambda s: {"payments__status": "captured"},
        lambda s: {s.order.id},
    ),
    (
        "orders by date",
        Order,
        lambda s: {"created_at__year": str(timezone.now().year)},
        lambda s: {s.order.id},
    ),
    ("orders by number", Order, lambda s: {"q": s.order.number}, lambda s: {s.order.id}),
    ("orders by other number", Order, lambda s: {"q": "NO-SUCH-ORDER"}, lambda s: set()),
    # --- stock levels
    (
        "stock in east",
        StockLevel,
        lambda s: {"warehouse__id__exact": str(s.stock_east.warehouse_id)},
        lambda s: {s.stock_east.id},
    ),
    ("low stock", StockLevel, lambda s: {"stock_status": "low_stock"}, lambda s: {s.stock_east.id}),
    (
        "in stock",
        StockLevel,
        lambda s: {"stock_status": "in_stock"},
        lambda s: {s.stock_a.id, s.stock_b.id},
    ),
    ("out of stock", StockLevel, lambda s: {"stock_status": "out_of_stock"}, lambda s: set()),
    ("stock by sku", StockLevel, lambda s: {"q": "BRAVO"}, lambda s: {s.stock_b.id}),
    # --- catalog, event log, idempotency keys
    ("products by sku", Product, lambda s: {"q": "east-3"}, lambda s: {s.stock_east.product_id}),
    (
        "products by currency",
        Product,
        lambda s: {"currency": "USD"},
        lambda s: set(Product.objects.values_list("id", flat=True)),
    ),
    ("warehouses", Warehouse, lambda s: {"q": "east"}, lambda s: {s.stock_east.warehouse_id}),
    (
        "confirmed events",
        ReservationEvent,
        lambda s: {"kind__exact": "confirmed"},
        lambda s: set(
            ReservationEvent.objects.filter(kind="confirmed").values_list("id", flat=True)
        ),
    ),
    (
        "events of one reservation",
        ReservationEvent,
        lambda s: {"q": str(s.lapsed.id)},
        lambda s: set(
            ReservationEvent.objects.filter(reservation=s.lapsed).values_list("id", flat=True)
        ),
    ),
    ("events by actor", ReservationEvent, lambda s: {"q": "admin:nobody"}, lambda s: set()),
    (
        "idempotency keys",
        IdempotencyKey,
        lambda s: {"q": str(s.order.cart_id)},
        lambda s: set(IdempotencyKey.objects.filter(order=s.order).values_list("id", flat=True)),
    ),
]


@pytest.mark.parametrize(("name", "model", "params", "expected"), CASES, ids=[c[0] for c in CASES])
def test_changelist_filters_and_search_show_the_right_rows(
    staff_browser, shop, name, model, params, expected
):
    assert shown(staff_browser, model, params(shop)) == expected(shop)


def test_filters_are_not_trivial(shop):
    """Guards the table above: the shop really has rows on both sides of each filter."""
    assert Reservation.objects.count() == 8
    assert Cart.objects.count() == 4
    assert Payment.objects.count() == 2


def test_stock_list_shows_available_per_row(staff_browser, shop):
    response = staff_browser.get(changelist(StockLevel))
    rows = {row.pk: row.available_now for row in response.context["cl"].result_list}
    assert rows[shop.stock_east.id] == 3  # 5 on hand, 1 sold, 1 held by the internal client
    assert rows[shop.stock_a.id] == 15  # 20 on hand, 3 sold, 2 held by the checkout
    assert b"available" in response.content


def test_product_list_sums_stock_over_warehouses(staff_browser, shop):
    response = staff_browser.get(changelist(Product), {"q": "ALPHA-1"})
    [product] = response.context["cl"].result_list
    assert (product.total_on_hand, product.total_reserved, product.total_available) == (17, 2, 15)


def _every_object(shop: Shop) -> list:
    return [
        shop.stock_a.product,
        shop.stock_east.warehouse,
        shop.stock_a,
        shop.lapsed,
        shop.order.items.first().reservations.first(),
        ReservationEvent.objects.first(),
        shop.checkout_cart,
        shop.order.cart,
        shop.order,
        shop.captured,
        shop.order.payments.get(),
        IdempotencyKey.objects.get(order=shop.order),
    ]


def test_every_registered_changelist_opens(staff_browser, shop):
    for model in admin.site._registry:
        response = staff_browser.get(changelist(model))
        assert response.status_code == 200, model


def test_every_change_page_opens(staff_browser, shop):
    for obj in _every_object(shop):
        response = staff_browser.get(change(obj))
        assert response.status_code == 200, (obj, response.status_code)


def test_order_page_shows_items_with_their_reservations(staff_browser, shop):
    response = staff_browser.get(change(shop.order))
    content = response.content.decode()
    for item in shop.order.items.all():
        assert item.sku in content
        url = reverse("admin:inventory_reservation_change", args=[item.reservations.first().id])
        assert url in content
    assert "confirmed" in content


def test_cart_page_shows_items_and_reservations(staff_browser, shop):
    content = staff_browser.get(change(shop.checkout_cart)).content.decode()
    assert "ALPHA-1" in content and "BRAVO-2" in content
    for reservation in shop.pending_of(shop.checkout_cart):
        assert reverse("admin:inventory_reservation_change", args=[reservation.id]) in content


@pytest.mark.parametrize(
    ("attr", "field"),
    [
        ("stock_a", "on_hand"),
        ("stock_a", "reserved"),
        ("lapsed", "status"),
        ("lapsed", "expires_at"),
        ("checkout_cart", "status"),
        ("order", "status"),
        ("captured", "status"),
        ("captured", "amount"),
    ],
)
def test_invariant_fields_are_not_editable(staff_browser, shop, attr, field):
    content = staff_browser.get(change(getattr(shop, attr))).content.decode()
    assert f'name="{field}"' not in content


def test_payment_follow_up_fields_are_editable(staff_browser, shop):
    url = change(shop.captured)
    assert 'name="needs_attention"' in staff_browser.get(url).content.decode()
    response = staff_browser.post(
        url, {"needs_attention": "on", "attention_reason": "called the bank"}
    )
    assert response.status_code == 302
    shop.captured.refresh_from_db()
    assert shop.captured.needs_attention is True
    assert shop.captured.attention_reason == "called the bank"
    assert shop.captured.status == "captured"


def test_posting_a_stock_change_is_refused(staff_browser, shop):
    response = staff_browser.post(change(shop.stock_a), {"on_hand": 999, "reserved": 0})
    assert response.status_code == 403
    assert shop.stock_a.__class__.objects.get(id=shop.stock_a.id).on_hand == 17


@pytest.mark.parametrize("model", [StockLevel, Reservation, ReservationEvent, Cart, Order, Payment])
def test_rows_written_by_services_cannot_be_added_here(staff_browser, model):
    meta = model._meta
    response = staff_browser.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
    assert response.status_code == 403


@pytest.mark.parametrize("attr", ["stock_a", "lapsed", "checkout_cart", "order", "captured"])
def test_rows_written_by_services_cannot_be_deleted_here(staff_browser, shop, attr):
    obj = getattr(shop, attr)
    meta = obj._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_delete", args=[obj.pk])
    assert staff_browser.post(url, {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_catalog_rows_can_be_added(staff_browser):
    assert staff_browser.get(reverse("admin:inventory_product_add")).status_code == 200
    assert staff_browser.get(reverse("admin:inventory_warehouse_add")).status_code == 200


@pytest.mark.parametrize("model", [Reservation, Cart, Order, Payment, StockLevel, ReservationEvent])
def test_changelist_queries_do_not_grow_with_rows(staff_browser, model):
    build_shop()
    with CaptureQueriesContext(connection) as small:
        assert staff_browser.get(changelist(model)).status_code == 200
    for _ in range(3):
        stock = stocked(on_hand=50)
        cart_in_checkout((stock, 1))
        paid_order((stock, 2))
    with CaptureQueriesContext(connection) as large:
        assert staff_browser.get(changelist(model)).status_code == 200
    assert len(large) == len(small)


def test_view_only_staff_sees_pages_but_no_actions(viewer_browser, shop):
    for model in (Reservation, Cart, Order, Payment):
        response = viewer_browser.get(changelist(model))
        assert response.status_code == 200
        assert 'name="action"' not in response.content.decode()
    assert viewer_browser.get(change(shop.stock_a)).status_code == 200
