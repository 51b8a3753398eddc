"""Confirming a checkout over HTTP: payment, order from the cart, reservations confirmed,
every failure path giving the stock back, idempotency and query cost."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar

import pytest
import time_machine
from django.utils import timezone
from prometheus_client import REGISTRY

from carts.models import Cart, CartStatus
from carts.services import remove_item
from carts.tokens import hash_token
from checkout.models import IdempotencyKey
from checkout.services import start_checkout
from inventory import services as inventory
from inventory.models import ReleaseReason, Reservation, ReservationStatus
from orders.models import Order
from payments.gateway import DummyGateway, PaymentRequest
from payments.models import Payment, PaymentStatus
from tests.support import (
    ADDRESS,
    API,
    BILLING,
    TOKEN,
    assert_error,
    cart_in_checkout,
    confirm,
    numbers,
    stocked,
)
from tests.support.factories import CartFactory, CartItemFactory

pytestmark = pytest.mark.django_db

ORDER_FIELDS = {
    "id",
    "number",
    "status",
    "cart_id",
    "email",
    "currency",
    "subtotal",
    "total",
    "items",
    "shipping_address",
    "billing_address",
    "payment_method",
    "payment",
    "created_at",
}
ITEM_FIELDS = {
    "id",
    "product_id",
    "sku",
    "name",
    "quantity",
    "unit_price",
    "line_total",
    "warehouse",
    "allocations",
    "reservation_id",
}


def reservations_of(cart: Cart) -> list[Reservation]:
    return list(Reservation.objects.filter(cart_id=cart.id).order_by("id"))


# --- the happy path ------------------------------------------------------------------


def test_shopper_buys_end_to_end_through_the_api(api_client):
    pen = stocked(on_hand=10, price="12.50")
    ink = stocked(on_hand=5, price="3.00")

    created = api_client.post(f"{API}/carts/", {}, format="json")
    assert created.status_code == 201
    cart_id, token = created.json()["id"], created.json()["token"]
    headers = {"HTTP_X_CART_TOKEN": token}
    for stock, quantity in ((pen, 2), (ink, 3)):
        added = api_client.post(
            f"{API}/carts/{cart_id}/items/",
            {"sku": stock.product.sku, "quantity": quantity},
            format="json",
            **headers,
        )
        assert added.status_code == 201, added.content
    started = api_client.post(f"{API}/carts/{cart_id}/checkout/", {}, format="json", **headers)
    assert started.status_code == 201, started.content
    assert numbers(pen) == (10, 2)
    patched = api_client.patch(
        f"{API}/carts/{cart_id}/checkout/",
        {"shipping_address": ADDRESS, "payment_method": "card"},
        format="json",
        **headers,
    )
    assert patched.status_code == 200, patched.content

    response = api_client.post(
        f"{API}/carts/{cart_id}/checkout/confirm/", {}, format="json", **headers
    )

    assert response.status_code == 201, response.content
    order = response.json()
    assert set(order) == ORDER_FIELDS
    assert order["status"] == "pending"
    assert order["number"].startswith("ORD-")
    assert order["cart_id"] == cart_id
    assert (order["currency"], order["subtotal"], order["total"]) == ("USD", "34.00", "34.00")
    assert order["payment_method"] == "card"
    assert order["payment"]["status"] == "captured"
    assert order["payment"]["payment_id"].startswith("pay_")
    assert order["payment"]["authorization_id"].startswith("auth_")
    assert [
        (i["sku"], i["quantity"], i["unit_price"], i["line_total"]) for i in order["items"]
    ] == [
        (pen.product.sku, 2, "12.50", "25.00"),
        (ink.product.sku, 3, "3.00", "9.00"),
    ]
    assert all(set(item) == ITEM_FIELDS for item in order["items"])
    # Stock left on_hand, nothing is held any more.
    assert numbers(pen) == (8, 0)
    assert numbers(ink) == (2, 0)
    cart = api_client.get(f"{API}/carts/{cart_id}/", **headers)
    assert cart.json()["status"] == "completed"
    seen = api_client.get(f"{API}/orders/{order['id']}/", **headers)
    assert seen.status_code == 200
    assert seen.json() == order


def test_cart_becomes_an_order_with_items_linked_to_their_reservations(api_client, customer_user):
    pen = stocked(on_hand=10, price="12.50")
    ink = stocked(on_hand=10, price="0.99")
    cart = cart_in_checkout((pen, 2), (ink, 5), customer=customer_user)
    held = {r.product_id: r for r in reservations_of(cart)}

    response = confirm(api_client, cart)

    assert response.status_code == 201, response.content
    order = Order.objects.get(cart=cart)
    assert response.json()["id"] == str(order.id)
    assert order.customer == customer_user
    assert order.shipping_address == ADDRESS
    assert order.billing_address == BILLING
    assert order.payment_method == "card"
    assert (order.subtotal, order.total) == (Decimal("29.95"), Decimal("29.95"))
    items = list(order.items.order_by("id"))
    assert [
        (i.product_id, i.sku, i.name, i.quantity, i.unit_price, i.line_total) for i in items
    ] == [
        (pen.product_id, pen.product.sku, pen.product.name, 2, Decimal("12.50"), Decimal("25.00")),
        (ink.product_id, ink.product.sku, ink.product.name, 5, Decimal("0.99"), Decimal("4.95")),
    ]
    for item in items:
        reservation = item.reservations.get()
        assert reservation == held[item.product_id]
        assert reservation.status == ReservationStatus.CONFIRMED
        assert reservation.order_id == order.id
        assert reservation.expires_at > timezone.now() + timedelta(seconds=600)
    assert [i["reservation_id"] for i in response.json()["items"]] == [
        i.reservations.get().id for i in items
    ]
    payment = Payment.objects.get(cart=cart)
    assert (payment.status, payment.order_id, payment.amount) == (
        PaymentStatus.CAPTURED,
        order.id,
        Decimal("29.95"),
    )
    assert payment.attempts == 2  # one authorization, one capture
    cart.refresh_from_db()
    assert cart.status == CartStatus.COMPLETED
    assert cart.completed_at is not None
    assert order.metadata == {}


def test_reservations_are_extended_to_the_payment_ttl_before_paying(api_client, settings):
    settings.PAYMENT_GATEWAY = "tests.checkout.test_confirm.ExpiryRecordingGateway"
    ExpiryRecordingGateway.seen.clear()
    stock = stocked()
    cart = cart_in_checkout((stock, 1))
    ttl = timedelta(seconds=settings.CHECKOUT_PAYMENT_TTL_SECONDS)
    before = timezone.now()

    assert confirm(api_client, cart).status_code == 201

    [expiry] = ExpiryRecordingGateway.seen
    assert before + ttl <= expiry <= timezone.now() + ttl
    cart.refresh_from_db()
    assert cart.expires_at is None  # completed


class ExpiryRecordingGateway(DummyGateway):
    """The dummy gateway, recording when asked to authorize until when the cart's
    reservations are held (as committed in the database)."""

    seen: ClassVar[list[datetime]] = []

    def authorize(self, request: PaymentRequest) -> str:
        payment = Payment.objects.get(id=request.reference)
        [expiry] = set(
            Reservation.objects.filter(
                cart_id=payment.cart_id, status=ReservationStatus.PENDING
            ).values_list("expires_at", flat=True)
        )
        self.seen.append(expiry)
        return super().authorize(request)


# --- payment failures ------------------------------------------------------------------


def assert_checkout_undone(cart: Cart, *stocks) -> None:
    cart.refresh_from_db()
    assert cart.status == CartStatus.ACTIVE
    assert cart.expires_at is None
    for stock in stocks:
        assert numbers(stock)[1] == 0
    held = reservations_of(cart)
    assert held and all(r.status == ReservationStatus.RELEASED for r in held)
    assert {r.release_reason for r in held} == {ReleaseReason.PAYMENT_FAILED}
    assert not Order.objects.filter(cart=cart).exists()


def test_declined_payment_answers_402_and_gives_the_stock_back(api_client):
    stock = stocked(on_hand=3)
    cart = cart_in_checkout((stock, 2), payment_method="test_decline")

    response = confirm(api_client, cart)

    assert response.status_code == 402
    assert assert_error(response)["code"] == "PAYMENT_DECLINED"
    assert_checkout_undone(cart, stock)
    assert numbers(stock) == (3, 0)
    payment = Payment.objects.get(cart=cart)
    assert (payment.status, payment.error_code, payment.attempts) == (
        PaymentStatus.FAILED,
        "PAYMENT_DECLINED",
        1,
    )
    assert payment.authorization_id == ""


def test_failed_capture_voids_the_authorization_and_answers_402(api_client):
    stock = stocked(on_hand=3)
    cart = cart_in_checkout((stock, 2), payment_method="test_capture_fail")

    response = confirm(api_client, cart)

    assert response.status_code == 402
    assert assert_error(response)["code"] == "PAYMENT_CAPTURE_FAILED"
    assert_checkout_undone(cart, stock)
    assert numbers(stock) == (3, 0)
    payment = Payment.objects.get(cart=cart)
    assert payment.status == PaymentStatus.VOIDED
    assert payment.authorization_id.startswith("auth_")
    assert payment.authorized_at is not None and payment.voided_at is not None
    assert payment.payment_id == ""
    assert payment.error_code == "PAYMENT_CAPTURE_FAILED"
    assert not payment.needs_attention


def test_gateway_timeout_is_retried_then_answers_504(api_client, settings):
    settings.PAYMENT_MAX_TRIES = 3
    stock = stocked(on_hand=3)
    cart = cart_in_checkout((stock, 2), payment_method="test_timeout")

    response = confirm(api_client, cart)

    assert response.status_code == 504
    assert assert_error(response)["code"] == "PAYMENT_TIMEOUT"
    assert_checkout_undone(cart, stock)
    payment = Payment.objects.get(cart=cart)
    assert (payment.status, payment.error_code, payment.attempts) == (
        PaymentStatus.FAILED,
        "PAYMENT_TIMEOUT",
        3,
    )


def test_after_a_declined_payment_the_shopper_can_start_again_and_buy(api_client):
    stock = stocked(on_hand=2)
    cart = cart_in_checkout((stock, 2), payment_method="test_decline")
    assert confirm(api_client, cart, key="attempt-1").status_code == 402

    start_checkout(cart_id=cart.id, actor="test")
    patched = api_client.patch(
        f"{API}/carts/{cart.id}/checkout/",
        {"payment_method": "card"},
        format="json",
        HTTP_X_CART_TOKEN=TOKEN,
    )
    assert patched.status_code == 200
    # The key of the failed attempt was not consumed by the failure.
    response = confirm(api_client, cart, key="attempt-1")

    assert response.status_code == 201, response.content
    assert numbers(stock) == (0, 0)
    assert sorted(Payment.objects.filter(cart=cart).values_list("status", flat=True)) == [
        PaymentStatus.CAPTURED,
        PaymentStatus.FAILED,
    ]
    assert Order.objects.filter(cart=cart).count() == 1


# --- refusals before paying ------------------------------------------------------------


def test_confirm_without_address_and_payment_method_lists_what_is_missing(api_client):
    stock = stocked()
    cart = cart_in_checkout((stock, 1), shipping_address=None, payment_method="")

    response = confirm(api_client, cart)

    assert response.status_code == 400
    error = assert_error(response)
    assert error["code"] == "MISSING_CHECKOUT_DATA"
    assert error["details"] == {"missing": ["shipping_address", "payment_method"]}
    cart.refresh_from_db()
    assert cart.status == CartStatus.CHECKOUT
    assert numbers(stock) == (10, 1)
    assert not Payment.objects.exists()


def test_confirm_without_payment_method_names_only_it(api_client):
    cart = cart_in_checkout((stocked(), 1), payment_method="")
    response = confirm(api_client, cart)
    assert response.status_code == 400
    assert assert_error(response)["details"] == {"missing": ["payment_method"]}


def test_confirm_of_a_cart_emptied_during_checkout_answers_cart_empty(api_client):
    stock = stocked()
    cart = cart_in_checkout((stock, 1))
    remove_item(cart_id=cart.id, item_id=cart.items.get().id, actor="test")

    response = confirm(api_client, cart)

    assert response.status_code == 400
    assert assert_error(response)["code"] == "CART_EMPTY"
    assert numbers(stock) == (10, 0)
    assert not Payment.objects.exists()


def test_confirm_of_a_cart_without_items_answers_cart_empty(api_client):
    cart = CartFactory(token_hash=hash_token(TOKEN))
    response = confirm(api_client, cart)
    assert response.status_code == 400
    assert assert_error(response)["code"] == "CART_EMPTY"


def test_confirm_of_a_cart_not_in_checkout_answers_409(api_client):
    cart = CartFactory(token_hash=hash_token(TOKEN))
    CartItemFactory(cart=cart, product=stocked().product)

    response = confirm(api_client, cart)

    assert response.status_code == 409
    error = assert_error(response)
    assert error["code"] == "INVALID_CART_STATUS"
    assert error["details"] == {"status": "active"}


def test_confirm_of_a_completed_cart_answers_409(api_client):
    cart = cart_in_checkout((stocked(), 1))
    assert confirm(api_client, cart).status_code == 201

    response = confirm(api_client, cart)

    assert response.status_code == 409
    assert assert_error(response)["details"] == {"status": "completed"}
    assert Payment.objects.filter(cart=cart).count() == 1


def test_confirm_after_the_checkout_expired_cleans_up_and_answers_410(api_client):
    stock = stocked(on_hand=4)
    cart = cart_in_checkout((stock, 3))

    with time_machine.travel(cart.expires_at + timedelta(seconds=1)):
        response = confirm(api_client, cart)

    assert response.status_code == 410
    assert assert_error(response)["code"] == "CHECKOUT_EXPIRED"
    cart.refresh_from_db()
    assert cart.status == CartStatus.ABANDONED
    assert numbers(stock) == (4, 0)
    assert not Payment.objects.exists()


def test_wrong_cart_token_answers_cart_not_found(api_client):
    cart = cart_in_checkout((stocked(), 1))
    for token in ("not-the-token", None):
        response = confirm(api_client, cart, token=token)
        assert response.status_code == 404
        assert assert_error(response)["code"] == "CART_NOT_FOUND"
    assert not Payment.objects.exists()


def test_owning_customer_confirms_without_the_token(api_client, customer_user):
    cart = cart_in_checkout((stocked(), 1), customer=customer_user)
    api_client.force_authenticate(customer_user)
    assert confirm(api_client, cart, token=None).status_code == 201


# --- stock re-validation ----------------------------------------------------------------


def test_line_whose_reservation_was_lost_is_reserved_again_when_stock_allows(api_client):
    pen, ink = stocked(on_hand=5), stocked(on_hand=5)
    cart = cart_in_checkout((pen, 2), (ink, 1))
    lost = Reservation.objects.get(cart=cart, product=pen.product)
    inventory.release(reservation_ids=[lost.id], reason=ReleaseReason.OPS)

    response = confirm(api_client, cart)

    assert response.status_code == 201, response.content
    pen_item = next(i for i in response.json()["items"] if i["sku"] == pen.product.sku)
    assert pen_item["reservation_id"] != lost.id
    assert numbers(pen) == (3, 0)
    assert numbers(ink) == (4, 0)


def test_lapsed_reservation_reclaimed_by_another_shopper_fails_with_insufficient_stock(
    api_client,
):
    pen, ink = stocked(on_hand=2), stocked(on_hand=5)
    cart = cart_in_checkout((pen, 2), (ink, 1))
    pen_held = Reservation.objects.get(cart=cart, product=pen.product)
    # The pen reservation alone lapses (as if it was never extended) and another shopper
    # reclaims the stock.
    Reservation.objects.filter(id=pen_held.id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    inventory.reserve(
        lines=[inventory.ReservationLine(pen.product_id, pen.warehouse_id, 2)], ttl_seconds=300
    )

    response = confirm(api_client, cart)

    assert response.status_code == 400
    error = assert_error(response)
    assert error["code"] == "INSUFFICIENT_STOCK"
    assert error["details"]["items"] == [
        {
            "product_id": str(pen.product_id),
            "sku": pen.product.sku,
            "warehouse": "default",
            "available": 0,
            "requested": 2,
        }
    ]
    cart.refresh_from_db()
    assert cart.status == CartStatus.ACTIVE
    assert numbers(ink) == (5, 0)
    assert numbers(pen) == (2, 2)  # the other shopper's
    assert not Payment.objects.exists()


def test_without_pre_reservation_confirm_reserves_the_stock_itself(api_client, settings):
    settings.ENABLE_PRE_RESERVATION = False
    stock = stocked(on_hand=3)
    cart = cart_in_checkout((stock, 2))
    assert not Reservation.objects.filter(cart=cart).exists()

    response = confirm(api_client, cart)

    assert response.status_code == 201, response.content
    assert numbers(stock) == (1, 0)
    [reservation] = reservations_of(cart)
    assert reservation.status == ReservationStatus.CONFIRMED
    assert response.json()["items"][0]["reservation_id"] == reservation.id


def test_without_pre_reservation_a_short_line_fails_before_paying(api_client, settings):
    settings.ENABLE_PRE_RESERVATION = False
    stock = stocked(on_hand=3)
    cart = cart_in_checkout((stock, 2))
    inventory.reserve(
        lines=[inventory.ReservationLine(stock.product_id, stock.warehouse_id, 2)],
        ttl_seconds=300,
    )

    response = confirm(api_client, cart)

    assert response.status_code == 400
    assert assert_error(response)["code"] == "INSUFFICIENT_STOCK"
    cart.refresh_from_db()
    assert cart.status == CartStatus.ACTIVE
    assert not Payment.objects.exists()


# --- idempotency -------------------------------------------------------------------------


def test_repeat_with_the_same_idempotency_key_answers_200_with_the_same_order(api_client):
    stock = stocked(on_hand=5)
    cart = cart_in_checkout((stock, 2))

    first = confirm(api_client, cart, key="key-1")
    again = confirm(api_client, cart, key="key-1")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Payment.objects.filter(cart=cart).count() == 1
    assert numbers(stock) == (3, 0)
    key = IdempotencyKey.objects.get(cart=cart, key="key-1")
    assert str(key.order_id) == first.json()["id"]


def test_same_idempotency_key_with_a_different_body_answers_409(api_client):
    cart = cart_in_checkout((stocked(), 1))
    assert confirm(api_client, cart, key="key-1").status_code == 201

    response = confirm(api_client, cart, key="key-1", body={"note": "something else"})

    assert response.status_code == 409
    assert assert_error(response)["code"] == "IDEMPOTENCY_CONFLICT"


def test_idempotency_key_longer_than_255_characters_is_refused(api_client):
    cart = cart_in_checkout((stocked(), 1))

    response = confirm(api_client, cart, key="k" * 256)

    assert response.status_code == 400
    error = assert_error(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert list(error["details"]["fields"]) == ["Idempotency-Key"]
    assert not Payment.objects.exists()
    assert confirm(api_client, cart, key="k" * 255).status_code == 201


def test_the_same_key_on_another_cart_is_another_request(api_client):
    first = cart_in_checkout((stocked(), 1))
    second = cart_in_checkout((stocked(), 1))
    assert confirm(api_client, first, key="shared").status_code == 201
    assert confirm(api_client, second, key="shared").status_code == 201
    assert Order.objects.count() == 2


def test_confirm_while_another_is_paying_answers_confirmation_in_progress(api_client, settings):
    settings.CHECKOUT_CONFIRM_WAIT_SECONDS = 0
    stock = stocked()
    cart = cart_in_checkout((stock, 1))
    # Another request of this cart is between its authorization and its capture.
    Payment.objects.create(
        cart=cart,
        gateway="dummy",
        method="card",
        amount=Decimal("10.00"),
        currency="USD",
        status=PaymentStatus.AUTHORIZED,
    )

    response = confirm(api_client, cart)

    assert response.status_code == 409
    error = assert_error(response)
    # API.md v1.1: how long until the payment counts as interrupted (then the same
    # request resolves it), in the body and in Retry-After.
    retry_after = error["details"].pop("retry_after_seconds")
    assert retry_after in range(
        settings.PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS - 2,
        settings.PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS + 1,
    )
    assert response["Retry-After"] == str(retry_after)
    assert error == {
        "code": "INVALID_CART_STATUS",
        "message": "Confirmation in progress",
        "details": {"status": "checkout"},
    }
    assert Payment.objects.filter(cart=cart).count() == 1
    assert numbers(stock) == (10, 1)


def test_payment_interrupted_long_ago_does_not_block_the_cart(api_client, settings):
    cart = cart_in_checkout((stocked(), 1))
    stale = Payment.objects.create(
        cart=cart,
        gateway="dummy",
        method="card",
        amount=Decimal("10.00"),
        currency="USD",
        status=PaymentStatus.PENDING,
    )
    Payment.objects.filter(id=stale.id).update(
        created_at=timezone.now()
        - timedelta(seconds=settings.PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS + 1)
    )
    assert confirm(api_client, cart).status_code == 201
    # The gateway never saw it: closed as failed, and the confirm paid once.
    stale.refresh_from_db()
    assert stale.status == PaymentStatus.FAILED and stale.resolved_at is not None
    assert Payment.objects.filter(cart=cart, status=PaymentStatus.CAPTURED).count() == 1


# --- cost ---------------------------------------------------------------------------------


# The whole confirm request: prepare (cart lock with the access check, checks, extension,
# payment row), payment updates, the order transaction (order, items, reservation
# confirmation, cart) and the answer. Savepoints included, as the test runs inside a
# transaction.
CONFIRM_QUERIES = 29


@pytest.mark.parametrize("lines", [1, 10])
def test_confirm_query_count_does_not_grow_with_the_lines(
    api_client, django_assert_num_queries, lines
):
    cart = cart_in_checkout(*[(stocked(), 1 + n % 3) for n in range(lines)])

    with django_assert_num_queries(CONFIRM_QUERIES):
        response = confirm(api_client, cart)

    assert response.status_code == 201, response.content
    assert len(response.json()["items"]) == lines


# --- metrics ------------------------------------------------------------------------------


def payments_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("payments_total", {"outcome": outcome}) or 0.0


@pytest.mark.parametrize(
    ("method", "outcome"),
    [
        ("card", "captured"),
        ("test_decline", "declined"),
        ("test_capture_fail", "capture_failed"),
        ("test_timeout", "timeout"),
    ],
)
def test_every_payment_outcome_is_counted(api_client, method, outcome):
    before = payments_counted(outcome)
    confirm(api_client, cart_in_checkout((stocked(), 1), payment_method=method))
    assert payments_counted(outcome) == before + 1
