"""Confirm under concurrency, on PostgreSQL with real threads: one capture and one order
per cart however many times it is confirmed at once, and no row lock held while the
gateway is called."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from queue import Queue
from typing import Any, ClassVar

import pytest
from django.db import OperationalError, connection, transaction
from rest_framework.test import APIClient

from inventory.models import ReservationEvent, ReservationEventKind, Warehouse
from orders.models import Order
from payments.gateway import DummyGateway, PaymentRequest
from payments.models import Payment, PaymentStatus
from tests.support import assert_error, cart_in_checkout, confirm, numbers, stocked

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


class GatedGateway(DummyGateway):
    """The dummy gateway holding each authorization until the test opens the gate, so the
    first confirm is paying for exactly as long as the test needs."""

    name = "gated-dummy"
    paying: ClassVar[threading.Event] = threading.Event()
    gate: ClassVar[threading.Event] = threading.Event()

    def authorize(self, request: PaymentRequest) -> str:
        type(self).paying.set()
        if not type(self).gate.wait(timeout=20):
            raise AssertionError("the test never opened the gate")
        return super().authorize(request)


@pytest.fixture
def gated(settings):
    settings.PAYMENT_GATEWAY = "tests.checkout.test_confirm_race.GatedGateway"
    GatedGateway.paying, GatedGateway.gate = threading.Event(), threading.Event()
    yield GatedGateway
    GatedGateway.gate.set()  # a failed test must not leave a confirm waiting


def confirm_in_thread(pool: ThreadPoolExecutor, cart, backend: Queue | None = None) -> Future:
    """Confirms ``cart`` in a thread with a connection of its own (closed at the end);
    the future re-raises the thread's exception. ``backend`` receives the connection's
    PostgreSQL pid before the request is sent."""

    def shopper() -> tuple[int, dict[str, Any]]:
        try:
            connection.ensure_connection()
            if backend is not None:
                backend.put(connection.connection.info.backend_pid)
            response = confirm(APIClient(), cart)
            return response.status_code, response.json()
        finally:
            connection.close()

    return pool.submit(shopper)


def wait_until_polling_the_payment(pid: int, timeout: float = 10) -> None:
    """Waits until the backend ``pid`` has committed its prepare step and polls the
    payment in flight: outside a transaction, its last statement reads the payment
    (``_await_in_flight``). Every payment read of the prepare step runs inside its
    transaction, so it never matches."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s", [pid])
            state, query = cursor.fetchone()
            if state == "idle" and query.startswith("SELECT") and '"payments_payment"' in query:
                return
            time.sleep(0.01)
    raise AssertionError(f"the second confirm never polled the payment: {state} {query!r}")


@pytest.mark.django_db(transaction=True)
def test_second_confirm_while_paying_gets_the_payment_error_of_the_first(settings, gated):
    settings.CHECKOUT_CONFIRM_WAIT_SECONDS = 15
    stock = stocked(on_hand=5)
    cart = cart_in_checkout((stock, 2), payment_method="test_decline")
    backend: Queue = Queue()

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = confirm_in_thread(pool, cart)
        assert gated.paying.wait(timeout=10)
        second = confirm_in_thread(pool, cart, backend)
        try:
            wait_until_polling_the_payment(backend.get(timeout=10))
        finally:
            gated.gate.set()
        first_answer, second_answer = first.result(timeout=30), second.result(timeout=30)

    # The first is declined by the gateway; the second, which arrived while the first was
    # paying, never called the gateway and answers with the first's error.
    assert (first_answer[0], first_answer[1]["error"]["code"]) == (402, "PAYMENT_DECLINED")
    assert (second_answer[0], second_answer[1]["error"]["code"]) == (402, "PAYMENT_DECLINED")
    assert [p.status for p in Payment.objects.filter(cart=cart)] == [PaymentStatus.FAILED]
    # One that arrives after the decline finds the cart back to active.
    late = confirm(APIClient(), cart)
    assert late.status_code == 409
    assert assert_error(late)["details"] == {"status": "active"}
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
        assert assert_error(response)["code"] == "PAYMENT_CAPTURE_FAILED"
    assert LockProbeGateway.probes == [(step, False, "free") for step in steps]
