"""Reservation endpoints (staff): create, list, get, extend, confirm, release."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from prometheus_client import REGISTRY

from inventory import services
from inventory.models import (
    ReleaseReason,
    Reservation,
    ReservationEvent,
    ReservationStatus,
)
from tests.support import assert_error, reserve
from tests.support.factories import (
    CartFactory,
    OrderFactory,
    ProductFactory,
    StockLevelFactory,
    WarehouseFactory,
)

pytestmark = pytest.mark.django_db

RESERVATIONS = "/api/v1/inventory/reservations/"
RESERVATION_FIELDS = {
    "id",
    "product_id",
    "sku",
    "warehouse",
    "quantity",
    "status",
    "expires_at",
    "extension_count",
    "cart_id",
    "order_id",
    "created_at",
    "confirmed_at",
    "released_at",
    "release_reason",
}


def at(value: str):
    return parse_datetime(value)


# --- POST inventory/reservations/ ---------------------------------------------------


def test_reserving_holds_stock_and_answers_every_reservation(staff_client, staff_user):
    a = StockLevelFactory(product__sku="A", on_hand=5)
    east = WarehouseFactory(code="east")
    b = StockLevelFactory(product__sku="B", warehouse=east, on_hand=2)
    before = timezone.now()

    response = staff_client.post(
        RESERVATIONS,
        {
            "items": [
                {"sku": "A", "quantity": 3},
                {"sku": "B", "quantity": 2, "warehouse": "east"},
            ],
            "ttl_minutes": 10,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"reservations", "expires_at"}
    expires_at = at(body["expires_at"])
    assert before + timedelta(minutes=10) <= expires_at <= timezone.now() + timedelta(minutes=10)
    first, second = body["reservations"]
    assert set(first) == RESERVATION_FIELDS
    reservation = Reservation.objects.get(id=first["id"])
    assert first == {
        "id": reservation.id,
        "product_id": str(a.product_id),
        "sku": "A",
        "warehouse": "default",
        "quantity": 3,
        "status": "pending",
        "expires_at": body["expires_at"],
        "extension_count": 0,
        "cart_id": None,
        "order_id": None,
        "created_at": first["created_at"],
        "confirmed_at": None,
        "released_at": None,
        "release_reason": None,
    }
    assert at(first["created_at"]) == reservation.created_at
    assert (second["sku"], second["warehouse"], second["quantity"]) == ("B", "east", 2)
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.reserved, b.reserved) == (3, 2)
    assert set(ReservationEvent.objects.values_list("actor", flat=True)) == {
        f"staff:{staff_user.username}"
    }


def test_default_ttl_is_fifteen_minutes(staff_client):
    StockLevelFactory(product__sku="A")
    before = timezone.now()

    response = staff_client.post(
        RESERVATIONS, {"items": [{"sku": "A", "quantity": 1}]}, format="json"
    )

    assert response.status_code == 201
    expires_at = at(response.json()["expires_at"])
    assert before + timedelta(minutes=15) <= expires_at <= timezone.now() + timedelta(minutes=15)


def test_lines_of_one_sku_become_one_reservation(staff_client):
    stock = StockLevelFactory(product__sku="A", on_hand=5)

    response = staff_client.post(
        RESERVATIONS,
        {
            "items": [
                {"sku": "A", "quantity": 2},
                {"sku": "A", "quantity": 3, "warehouse": "default"},
            ]
        },
        format="json",
    )

    assert response.status_code == 201
    assert [r["quantity"] for r in response.json()["reservations"]] == [5]
    stock.refresh_from_db()
    assert stock.reserved == 5


def test_short_lines_are_all_listed_and_nothing_is_reserved(staff_client):
    a = StockLevelFactory(product__sku="A", on_hand=1)
    b = StockLevelFactory(product__sku="B", on_hand=10)
    c = ProductFactory(sku="C")  # no stock row

    response = staff_client.post(
        RESERVATIONS,
        {
            "items": [
                {"sku": "A", "quantity": 2},
                {"sku": "B", "quantity": 1},
                {"sku": "C", "quantity": 1},
            ]
        },
        format="json",
    )

    error = assert_error(response, 400, "INSUFFICIENT_STOCK")
    assert error["details"] == {
        "items": [
            {
                "product_id": str(a.product_id),
                "sku": "A",
                "warehouse": "default",
                "available": 1,
                "requested": 2,
            },
            {
                "product_id": str(c.id),
                "sku": "C",
                "warehouse": "default",
                "available": 0,
                "requested": 1,
            },
        ]
    }
    assert not Reservation.objects.exists()
    b.refresh_from_db()
    assert b.reserved == 0


def test_reserving_unknown_skus_is_product_not_found(staff_client):
    StockLevelFactory(product__sku="A")

    response = staff_client.post(
        RESERVATIONS,
        {"items": [{"sku": "A", "quantity": 1}, {"sku": "GHOST", "quantity": 1}]},
        format="json",
    )

    error = assert_error(response, 404, "PRODUCT_NOT_FOUND")
    assert error["details"] == {"skus": ["GHOST"]}
    assert not Reservation.objects.exists()


def test_reserving_in_unknown_warehouse_is_not_found(staff_client):
    StockLevelFactory(product__sku="A")

    response = staff_client.post(
        RESERVATIONS,
        {"items": [{"sku": "A", "quantity": 1, "warehouse": "mars"}]},
        format="json",
    )

    assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "items"),
        ({}, "items"),
        ({"items": [{"sku": "A", "quantity": 0}]}, "items.0.quantity"),
        ({"items": [{"sku": "A", "quantity": -2}]}, "items.0.quantity"),
        ({"items": [{"quantity": 1}]}, "items.0.sku"),
        ({"items": [{"sku": "A", "quantity": 1}], "ttl_minutes": 0}, "ttl_minutes"),
        ({"items": [{"sku": "A", "quantity": 1}], "ttl_minutes": 31}, "ttl_minutes"),
        ({"items": [{"sku": "A", "quantity": 1}], "ttl_minutes": "soon"}, "ttl_minutes"),
        ({"items": "A"}, "items"),
    ],
)
def test_invalid_reservation_bodies_are_validation_errors(staff_client, body, field):
    StockLevelFactory(product__sku="A")

    error = assert_error(
        staff_client.post(RESERVATIONS, body, format="json"), 400, "VALIDATION_ERROR"
    )

    assert list(error["details"]["fields"]) == [field]
    assert not Reservation.objects.exists()


def test_ttl_outside_the_configured_bounds_is_validation_error(staff_client, settings):
    StockLevelFactory(product__sku="A")
    settings.RESERVATION_MIN_TTL_SECONDS = 300
    settings.RESERVATION_MAX_TTL_SECONDS = 600
    item = [{"sku": "A", "quantity": 1}]

    for ttl_minutes in (4, 11):
        response = staff_client.post(
            RESERVATIONS, {"items": item, "ttl_minutes": ttl_minutes}, format="json"
        )
        error = assert_error(response, 400, "VALIDATION_ERROR")
        assert list(error["details"]["fields"]) == ["ttl_minutes"]
    assert not Reservation.objects.exists()
    # The default (15 minutes) is capped at the configured maximum.
    response = staff_client.post(RESERVATIONS, {"items": item}, format="json")
    assert response.status_code == 201
    assert at(response.json()["expires_at"]) <= timezone.now() + timedelta(seconds=600)


def test_lapsed_reservations_do_not_block_a_new_one(staff_client):
    stock = StockLevelFactory(product__sku="A", on_hand=2)
    old = reserve(stock, 2, ttl_seconds=60)

    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        response = staff_client.post(
            RESERVATIONS, {"items": [{"sku": "A", "quantity": 2}]}, format="json"
        )

    assert response.status_code == 201
    old.refresh_from_db()
    assert old.status == ReservationStatus.EXPIRED


def test_creating_a_reservation_takes_constant_queries(staff_client, django_assert_num_queries):
    skus = [StockLevelFactory(on_hand=5).product.sku for _ in range(20)]

    def post(count: int):
        return staff_client.post(
            RESERVATIONS,
            {"items": [{"sku": sku, "quantity": 1} for sku in skus[:count]]},
            format="json",
        )

    # token, products, warehouses; the reservation: savepoint, lock, write, release
    for count in (2, 20):
        with django_assert_num_queries(7):
            assert post(count).status_code == 201


# --- GET inventory/reservations/ ----------------------------------------------------


def test_reservation_list_is_paginated_newest_first(staff_client):
    stock = StockLevelFactory(on_hand=10)
    ids = [reserve(stock).id for _ in range(3)]

    body = staff_client.get(RESERVATIONS, {"page_size": 2}).json()

    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert [r["id"] for r in body["results"]] == ids[::-1][:2]
    assert set(body["results"][0]) == RESERVATION_FIELDS
    assert [r["id"] for r in staff_client.get(body["next"]).json()["results"]] == ids[:1]


def test_reservation_list_filters(staff_client):
    a = StockLevelFactory(product__sku="A", on_hand=20)
    b = StockLevelFactory(product__sku="B", on_hand=20)
    cart = CartFactory()
    in_cart = reserve(a, cart=cart)
    plain_b = reserve(b)
    released = reserve(a)
    services.release(reservation_ids=[released.id])
    order = OrderFactory()
    confirmed = reserve(b)
    services.confirm(reservation_ids=[confirmed.id], order_id=order.id)
    lapsing = reserve(a, ttl_seconds=60)

    def ids(**params) -> list[int]:
        response = staff_client.get(RESERVATIONS, params)
        assert response.status_code == 200, response.content
        return sorted(r["id"] for r in response.json()["results"])

    assert ids(status="released") == [released.id]
    assert ids(status="pending") == sorted([in_cart.id, plain_b.id, lapsing.id])
    assert ids(cart=str(cart.id)) == [in_cart.id]
    assert ids(order=str(order.id)) == [confirmed.id]
    assert ids(sku="B") == sorted([plain_b.id, confirmed.id])
    assert ids(sku="B", status="pending") == [plain_b.id]
    assert ids(status="", cart="") == sorted(
        [in_cart.id, plain_b.id, released.id, confirmed.id, lapsing.id]
    )
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert ids(expired="true") == [lapsing.id]
        assert lapsing.id not in ids(expired="false")
        assert len(ids(expired="false")) == 4
    assert ids(expired="true") == []


@pytest.mark.parametrize(
    "params",
    [
        {"status": "lost"},
        {"cart": "not-a-uuid"},
        {"order": "123"},
        {"expired": "maybe"},
        {"sku": "x" * 65},
    ],
)
def test_bad_reservation_filters_are_validation_errors(staff_client, params):
    error = assert_error(staff_client.get(RESERVATIONS, params), 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == list(params)


def test_reservation_list_query_count_does_not_grow(staff_client, django_assert_num_queries):
    stocks = [StockLevelFactory(on_hand=100) for _ in range(3)]
    for stock in stocks:
        reserve(stock)
    # token+user, count, page
    with django_assert_num_queries(3):
        assert staff_client.get(RESERVATIONS).json()["count"] == 3
    for stock in stocks + [StockLevelFactory(on_hand=100) for _ in range(10)]:
        reserve(stock, cart=CartFactory())
    with django_assert_num_queries(3):
        assert staff_client.get(RESERVATIONS).json()["count"] == 16


# --- GET inventory/reservations/{id}/ -----------------------------------------------


def test_reservation_detail(staff_client):
    cart = CartFactory()
    reservation = reserve(StockLevelFactory(product__sku="A"), 1, cart=cart)

    response = staff_client.get(f"{RESERVATIONS}{reservation.id}/")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["sku"], body["cart_id"], body["status"]) == (
        reservation.id,
        "A",
        str(cart.id),
        "pending",
    )


@pytest.mark.parametrize("reservation_id", ["999999", "abc", "0", "-1", str(2**64), "\uff11\uff12"])
def test_unknown_or_malformed_reservation_is_not_found(staff_client, reservation_id):
    for response in (
        staff_client.get(f"{RESERVATIONS}{reservation_id}/"),
        staff_client.put(
            f"{RESERVATIONS}{reservation_id}/extend/",
            {"expires_at": (timezone.now() + timedelta(minutes=5)).isoformat()},
            format="json",
        ),
        staff_client.post(
            f"{RESERVATIONS}{reservation_id}/confirm/",
            {"order_id": str(OrderFactory().id)},
            format="json",
        ),
        staff_client.post(f"{RESERVATIONS}{reservation_id}/release/", {}, format="json"),
    ):
        assert_error(response, 404, "RESERVATION_NOT_FOUND")


# --- PUT inventory/reservations/{id}/extend/ -----------------------------------------


def extend(client, reservation_id: int, expires_at):
    value = expires_at if isinstance(expires_at, str) else expires_at.isoformat()
    return client.put(
        f"{RESERVATIONS}{reservation_id}/extend/", {"expires_at": value}, format="json"
    )


def test_extending_moves_the_expiry_and_counts(staff_client, staff_user):
    reservation = reserve(StockLevelFactory())
    new_expiry = timezone.now() + timedelta(minutes=20)

    response = extend(staff_client, reservation.id, new_expiry)

    assert response.status_code == 200, response.content
    body = response.json()
    assert at(body["expires_at"]) == new_expiry
    assert body["extension_count"] == 1
    assert set(body) == RESERVATION_FIELDS
    reservation.refresh_from_db()
    assert (reservation.expires_at, reservation.extension_count) == (new_expiry, 1)
    event = reservation.events.get(kind="extended")
    assert event.actor == f"staff:{staff_user.username}"


@pytest.mark.parametrize(
    "offset", [timedelta(seconds=-1), timedelta(0), timedelta(seconds=1801), timedelta(days=3)]
)
def test_expiry_outside_now_and_max_ttl_is_validation_error(staff_client, offset):
    reservation = reserve(StockLevelFactory())

    with time_machine.travel(timezone.now(), tick=False):
        response = extend(staff_client, reservation.id, timezone.now() + offset)

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["expires_at"]
    reservation.refresh_from_db()
    assert reservation.extension_count == 0


def test_expiry_at_exactly_the_max_ttl_is_accepted(staff_client, settings):
    reservation = reserve(StockLevelFactory())

    with time_machine.travel(timezone.now(), tick=False):
        limit = timezone.now() + timedelta(seconds=settings.RESERVATION_MAX_TTL_SECONDS)
        response = extend(staff_client, reservation.id, limit)

    assert response.status_code == 200


@pytest.mark.parametrize("value", ["tomorrow", "", "2025-13-01T00:00:00Z"])
def test_unparseable_expiry_is_validation_error(staff_client, value):
    reservation = reserve(StockLevelFactory())
    error = assert_error(extend(staff_client, reservation.id, value), 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["expires_at"]


def test_extension_limit_is_enforced(staff_client, settings):
    settings.CHECKOUT_MAX_EXTENSIONS = 2
    reservation = reserve(StockLevelFactory())
    for minutes in (10, 11):
        assert (
            extend(
                staff_client, reservation.id, timezone.now() + timedelta(minutes=minutes)
            ).status_code
            == 200
        )

    response = extend(staff_client, reservation.id, timezone.now() + timedelta(minutes=12))

    assert_error(response, 409, "EXTENSION_LIMIT_REACHED")
    reservation.refresh_from_db()
    assert reservation.extension_count == 2


def test_extending_a_lapsed_or_ended_reservation_is_not_active(staff_client):
    stock = StockLevelFactory(on_hand=10)
    released = reserve(stock)
    services.release(reservation_ids=[released.id])
    lapsed = reserve(stock, ttl_seconds=60)

    assert_error(
        extend(staff_client, released.id, timezone.now() + timedelta(minutes=5)),
        409,
        "RESERVATION_NOT_ACTIVE",
    )
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        response = extend(staff_client, lapsed.id, timezone.now() + timedelta(minutes=5))
    assert_error(response, 409, "RESERVATION_NOT_ACTIVE")


# --- POST inventory/reservations/{id}/confirm/ ----------------------------------------


def confirm(client, reservation_id: int, order_id):
    return client.post(
        f"{RESERVATIONS}{reservation_id}/confirm/", {"order_id": str(order_id)}, format="json"
    )


def test_confirming_deducts_stock_and_repeating_is_a_no_op(staff_client):
    stock = StockLevelFactory(on_hand=10)
    reservation = reserve(stock, 3)
    order = OrderFactory()

    first = confirm(staff_client, reservation.id, order.id)
    again = confirm(staff_client, reservation.id, order.id)

    assert first.status_code == 200, first.content
    body = first.json()
    assert (body["status"], body["order_id"]) == ("confirmed", str(order.id))
    assert body["confirmed_at"] is not None
    assert again.status_code == 200
    assert again.json() == body
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (7, 0)
    assert reservation.events.filter(kind="confirmed").count() == 1


def test_confirming_for_another_order_is_not_active(staff_client):
    stock = StockLevelFactory(on_hand=10)
    reservation = reserve(stock, 3)
    confirm(staff_client, reservation.id, OrderFactory().id)

    response = confirm(staff_client, reservation.id, OrderFactory().id)

    assert_error(response, 409, "RESERVATION_NOT_ACTIVE")
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (7, 0)


def test_confirming_a_released_reservation_is_not_active(staff_client):
    reservation = reserve(StockLevelFactory())
    services.release(reservation_ids=[reservation.id])

    assert_error(
        confirm(staff_client, reservation.id, OrderFactory().id), 409, "RESERVATION_NOT_ACTIVE"
    )


def test_confirming_into_an_unknown_order_is_order_not_found(staff_client):
    import uuid

    stock = StockLevelFactory(on_hand=10)
    reservation = reserve(stock, 3)

    assert_error(confirm(staff_client, reservation.id, uuid.uuid4()), 404, "ORDER_NOT_FOUND")
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (10, 3)


@pytest.mark.parametrize("body", [{}, {"order_id": "nope"}, {"order_id": None}])
def test_confirm_needs_a_valid_order_id(staff_client, body):
    reservation = reserve(StockLevelFactory())
    response = staff_client.post(f"{RESERVATIONS}{reservation.id}/confirm/", body, format="json")
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["order_id"]


# --- POST inventory/reservations/{id}/release/ ----------------------------------------


def release(client, reservation_id: int, body=None):
    return client.post(f"{RESERVATIONS}{reservation_id}/release/", body or {}, format="json")


def test_releasing_gives_stock_back_and_repeating_is_a_no_op(staff_client, staff_user):
    stock = StockLevelFactory(on_hand=10)
    reservation = reserve(stock, 4)

    first = release(staff_client, reservation.id)
    again = release(staff_client, reservation.id)

    assert first.status_code == 200, first.content
    body = first.json()
    assert (body["status"], body["release_reason"]) == ("released", "api")
    assert body["released_at"] is not None
    assert again.status_code == 200
    assert again.json() == body
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (10, 0)
    [event] = reservation.events.filter(kind="released")
    assert (event.actor, event.reason) == (f"staff:{staff_user.username}", "api")


def test_release_reason_is_recorded(staff_client):
    reservation = reserve(StockLevelFactory())

    response = release(staff_client, reservation.id, {"reason": "staff"})

    assert response.json()["release_reason"] == ReleaseReason.STAFF
    reservation.refresh_from_db()
    assert reservation.release_reason == ReleaseReason.STAFF


def test_free_text_release_reason_is_kept_as_given_with_its_event(staff_client, staff_user):
    stock = StockLevelFactory(on_hand=5)
    reservation = reserve(stock, 2)
    reason = "  damaged in the warehouse — shelf 4 ✓ " + "x" * 215  # 255 characters

    response = release(staff_client, reservation.id, {"reason": reason})

    assert response.status_code == 200, response.content
    assert response.json()["release_reason"] == reason
    reservation.refresh_from_db()
    assert (reservation.status, reservation.release_reason) == ("released", reason)
    [event] = reservation.events.filter(kind="released")
    assert (event.reason, event.actor) == (reason, f"staff:{staff_user.username}")
    stock.refresh_from_db()
    assert stock.reserved == 0


def test_free_text_release_reason_counts_as_other_in_the_metric(
    staff_client, django_capture_on_commit_callbacks
):
    reservation = reserve(StockLevelFactory())
    before = REGISTRY.get_sample_value("reservations_released_total", {"reason": "other"}) or 0

    with django_capture_on_commit_callbacks(execute=True):
        release(staff_client, reservation.id, {"reason": "damaged in the warehouse"})

    after = REGISTRY.get_sample_value("reservations_released_total", {"reason": "other"})
    assert after == before + 1
    assert (
        REGISTRY.get_sample_value(
            "reservations_released_total", {"reason": "damaged in the warehouse"}
        )
        is None
    )


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_absent_or_blank_release_reason_is_api(staff_client, reason):
    reservation = reserve(StockLevelFactory())

    response = staff_client.post(
        f"{RESERVATIONS}{reservation.id}/release/", {"reason": reason}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["release_reason"] == ReleaseReason.API


def test_release_reason_longer_than_255_characters_is_refused(staff_client):
    reservation = reserve(StockLevelFactory())

    response = release(staff_client, reservation.id, {"reason": "x" * 256})

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "255" in error["details"]["fields"]["reason"][0]
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PENDING


def test_releasing_an_expired_reservation_is_a_no_op(staff_client):
    stock = StockLevelFactory(on_hand=10)
    reservation = reserve(stock, 2, ttl_seconds=60)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        services.expire(reservation_ids=[reservation.id])

    response = release(staff_client, reservation.id)

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["release_reason"]) == ("expired", None)
    stock.refresh_from_db()
    assert stock.reserved == 0


def test_releasing_a_confirmed_reservation_is_not_active(staff_client):
    stock = StockLevelFactory(on_hand=10)
    reservation = reserve(stock, 2)
    services.confirm(reservation_ids=[reservation.id], order_id=OrderFactory().id)

    assert_error(release(staff_client, reservation.id), 409, "RESERVATION_NOT_ACTIVE")
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (8, 0)


# --- Permissions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("post", "", {"items": [{"sku": "A", "quantity": 1}]}),
        ("get", "{id}/", None),
        ("put", "{id}/extend/", {"expires_at": "2100-01-01T00:00:00Z"}),
        ("post", "{id}/confirm/", {"order_id": "00000000-0000-0000-0000-000000000000"}),
        ("post", "{id}/release/", {}),
    ],
)
def test_reservation_endpoints_are_staff_only(api_client, customer_client, method, suffix, body):
    stock = StockLevelFactory(product__sku="A", on_hand=5)
    reservation = reserve(stock)
    url = RESERVATIONS + suffix.format(id=reservation.id)

    assert_error(getattr(api_client, method)(url, body, format="json"), 401, "NOT_AUTHENTICATED")
    assert_error(
        getattr(customer_client, method)(url, body, format="json"), 403, "PERMISSION_DENIED"
    )
    reservation.refresh_from_db()
    assert (reservation.status, reservation.extension_count) == ("pending", 0)
    assert Reservation.objects.count() == 1
