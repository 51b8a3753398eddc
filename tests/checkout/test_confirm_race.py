"""Confirm under concurrency, on PostgreSQL with real threads: one capture and one order
per cart however many times it is confirmed at once, and no row lock held while the
gateway is called."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import pytest
from django.db import OperationalError, connection, transaction
from rest_framework.test import APIClient

from inventory.models import ReservationEvent, ReservationEventKind, Warehouse
from orders.models import Order
from payments.gateway import DummyGateway, PaymentRequest
from payments.models import Payment, PaymentStatus
from tests.orders.checkout_setup import cart_in_checkout, confirm, error_of, numbers, stocked

THREADS = 8


@pytest.fixture(autouse=True)
def default_warehouse(transactional_db):
    """Transactional tests flush the database, the data migration's warehouse included."""
    warehouse, _ = Warehouse.objects.get_or_create(
        code="default", defaults={"name": "Default", "is_default": True}
    )
    return warehouse


class SlowGateway(DummyGateway):
    """The dummy gateway, taking a moment to authorize as a real provider does, so that
    the other confirms arrive while the first is paying."""

    name = "slow-dummy"

    def authorize(self, request: PaymentRequest) -> str:
        time.sleep(0.3)
        return super().authorize(request)


def race(cart, *, key: str | None) -> list[tuple[int, dict[str, Any]]]:
    barrier = threading.Barrier(THREADS)
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def shopper() -> None:
        try:
            client = APIClient()
            barrier.wait(timeout=10)
            response = confirm(client, cart, key=key)
            with lock:
                results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=shopper) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == THREADS
    return results


def assert_paid_once(cart, stock) -> Order:
    payments = list(Payment.objects.filter(cart=cart))
    assert [p.status for p in payments] == [PaymentStatus.CAPTURED]
    [order] = Order.objects.filter(cart=cart)
    assert payments[0].order_id == order.id
    assert numbers(stock) == (3, 0)  # 5 on hand, 2 bought once
    confirmed = ReservationEvent.objects.filter(
        kind=ReservationEventKind.CONFIRMED, reservation__cart_id=cart.id
    )
    assert confirmed.count() == 1
    return order


@pytest.mark.django_db(transaction=True)
def test_same_cart_confirmed_by_8_threads_at_once_charges_once_and_makes_one_order(settings):
    settings.PAYMENT_GATEWAY = "tests.checkout.test_confirm_race.SlowGateway"
    settings.CHECKOUT_CONFIRM_WAIT_SECONDS = 15
    stock = stocked(on_hand=5)
    cart = cart_in_checkout((stock, 2))

    results = race(cart, key=None)

    order = assert_paid_once(cart, stock)
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 1, statuses
    for status, body in results:
        if status in (200, 201):
            assert body["id"] == str(order.id)
        else:
            # Arrived after the first had completed the cart.
            assert status == 409, body
            assert body["error"]["code"] == "INVALID_CART_STATUS"
            assert body["error"]["details"] == {"status": "completed"}


@pytest.mark.django_db(transaction=True)
def test_same_idempotency_key_sent_by_8_threads_at_once_answers_one_order(settings):
    settings.PAYMENT_GATEWAY = "tests.checkout.test_confirm_race.SlowGateway"
    settings.CHECKOUT_CONFIRM_WAIT_SECONDS = 15
    stock = stocked(on_hand=5)
    cart = cart_in_checkout((stock, 2))

    results = race(cart, key="double-click")

    order = assert_paid_once(cart, stock)
    assert sorted(status for status, _ in results) == [200] * (THREADS - 1) + [201]
    assert {body["id"] for _, body in results} == {str(order.id)}


@pytest.mark.django_db(transaction=True)
def test_second_confirm_while_paying_gets_the_payment_error_of_the_first(settings):
    settings.PAYMENT_GATEWAY = "tests.checkout.test_confirm_race.SlowGateway"
    settings.CHECKOUT_CONFIRM_WAIT_SECONDS = 15
    stock = stocked(on_hand=5)
    cart = cart_in_checkout((stock, 2), payment_method="test_decline")

    results = race(cart, key=None)

    assert [p.status for p in Payment.objects.filter(cart=cart)] == [PaymentStatus.FAILED]
    for status, body in results:
        if status == 402:
            assert body["error"]["code"] == "PAYMENT_DECLINED"
        else:
            # Arrived after the cart went back to active.
            assert (status, body["error"]["details"]) == (409, {"status": "active"})
    assert [status for status, _ in results].count(402) >= 1
    assert numbers(stock) == (5, 0)
    assert not Order.objects.exists()


class LockProbeGateway(DummyGateway):
    """The dummy gateway that, on every call, checks from another database connection
    that the cart, its stock rows, reservations and payment can be locked at once
    (``NOWAIT``), and that the calling connection has no transaction open."""

    name = "lock-probe"
    probes: ClassVar[list[tuple[str, bool, str]]] = []

    def _probe(self, step: str, request: PaymentRequest) -> None:
        in_transaction = connection.in_atomic_block
        cart_id = Payment.objects.values_list("cart_id", flat=True).get(id=request.reference)
        outcome: list[str] = []

        def probe() -> None:
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT id FROM carts_cart WHERE id = %s FOR UPDATE NOWAIT", [cart_id]
                    )
                    cursor.execute(
                        "SELECT id FROM inventory_stocklevel WHERE id IN (SELECT stock_level_id"
                        " FROM inventory_reservation WHERE cart_id = %s) FOR UPDATE NOWAIT",
                        [cart_id],
                    )
                    cursor.execute(
                        "SELECT id FROM inventory_reservation WHERE cart_id = %s FOR UPDATE NOWAIT",
                        [cart_id],
                    )
                    cursor.execute(
                        "SELECT id FROM payments_payment WHERE cart_id = %s FOR UPDATE NOWAIT",
                        [cart_id],
                    )
                outcome.append("free")
            except OperationalError as exc:
                outcome.append(f"locked: {exc}")
            finally:
                connection.close()

        thread = threading.Thread(target=probe)
        thread.start()
        thread.join(timeout=10)
        self.probes.append((step, in_transaction, outcome[0] if outcome else "no answer"))

    def authorize(self, request: PaymentRequest) -> str:
        self._probe("authorize", request)
        return super().authorize(request)

    def capture(self, request: PaymentRequest, *, authorization_id: str) -> str:
        self._probe("capture", request)
        return super().capture(request, authorization_id=authorization_id)

    def void(self, request: PaymentRequest, *, authorization_id: str) -> None:
        self._probe("void", request)
        return super().void(request, authorization_id=authorization_id)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("method", "status", "steps"),
    [
        ("card", 201, ["authorize", "capture"]),
        ("test_capture_fail", 402, ["authorize", "capture", "void"]),
    ],
)
def test_no_row_lock_is_held_while_the_gateway_is_called(settings, method, status, steps):
    settings.PAYMENT_GATEWAY = "tests.checkout.test_confirm_race.LockProbeGateway"
    LockProbeGateway.probes.clear()
    cart = cart_in_checkout((stocked(), 2), (stocked(), 1), payment_method=method)

    response = confirm(APIClient(), cart)

    assert response.status_code == status, response.content
    if status != 201:
        assert error_of(response)["code"] == "PAYMENT_CAPTURE_FAILED"
    assert LockProbeGateway.probes == [(step, False, "free") for step in steps]
