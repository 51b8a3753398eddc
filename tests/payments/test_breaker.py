"""The payment gateway's circuit breaker (``payments.breaker``) in one process, its state
in the test Redis: when it opens, what it refuses, the one trial call, what it does when
Redis is gone, and the confirm it refuses (503 ``PAYMENT_UNAVAILABLE``)."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from carts.models import Cart
from core import metrics
from inventory.models import Reservation
from orders.models import Order
from payments import breaker
from payments.gateway import (
    DummyGateway,
    GatewayDeclined,
    GatewayTimeout,
    GatewayUnavailable,
    PaymentRequest,
    call_with_retries,
    get_gateway,
)
from payments.models import Payment, PaymentStatus
from tests.support import assert_error, cart_in_checkout, confirm, stocked
from tests.support.processes import free_port

CALLS: list[tuple[str, str]] = []
GATE = threading.Event()
INSIDE = threading.Event()


class CountingGateway(DummyGateway):
    """The dummy gateway, recording every call that reaches it; ``test_gate`` waits for
    :data:`GATE` inside the authorization."""

    name = "counting"

    def authorize(self, request: PaymentRequest) -> str:
        CALLS.append(("authorize", request.method))
        if request.method == "test_gate":
            INSIDE.set()
            assert GATE.wait(10)
            return "auth_gated"
        return super().authorize(request)

    def capture(self, request: PaymentRequest, *, authorization_id: str) -> str:
        CALLS.append(("capture", request.method))
        return super().capture(request, authorization_id=authorization_id)


@pytest.fixture(autouse=True)
def breaker_settings(settings):
    settings.PAYMENT_GATEWAY = "tests.payments.test_breaker.CountingGateway"
    settings.PAYMENT_BREAKER_FAILURES = 3
    settings.PAYMENT_BREAKER_RESET_SECONDS = 30
    settings.PAYMENT_MAX_TRIES = 1
    CALLS.clear()
    GATE.clear()
    INSIDE.clear()
    breaker.reset()
    yield
    GATE.set()
    breaker.reset()


def _request(method: str) -> PaymentRequest:
    return PaymentRequest(reference="ref-1", amount=Decimal("10.00"), currency="USD", method=method)


def authorize(method: str) -> str:
    return get_gateway().authorize(_request(method))


def trip(times: int = 3) -> None:
    for _ in range(times):
        with pytest.raises(GatewayTimeout):
            authorize("test_timeout")


def wait_until_half_open(timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while breaker.retry_after_seconds() > 0:
        assert time.monotonic() < deadline, breaker.snapshot()
        time.sleep(0.05)


def transitions() -> dict[str, float]:
    return {
        to: metrics.payment_breaker_transitions_total.labels(to=to)._value.get()
        for to in metrics.PAYMENT_BREAKER_TRANSITIONS
    }


def events(caplog) -> list[str]:
    return [r.msg for r in caplog.records if r.name == "payments.breaker"]


# --- opening --------------------------------------------------------------------------


def test_consecutive_failures_open_it_and_then_calls_are_refused_without_reaching_the_gateway(
    caplog,
):
    caplog.set_level(logging.INFO, logger="payments.breaker")
    before = transitions()
    trip()
    assert len(CALLS) == 3
    snap = breaker.snapshot()
    assert snap.state == "open" and snap.failures == 3 and snap.storage_available

    started = time.monotonic()
    with pytest.raises(GatewayUnavailable) as refused:
        authorize("card")
    assert time.monotonic() - started < 0.5
    assert len(CALLS) == 3  # nothing sent to the provider
    assert 28 <= refused.value.retry_after <= 30
    assert breaker.is_open()
    assert 28 <= breaker.retry_after_seconds() <= 30
    with pytest.raises(GatewayUnavailable):
        breaker.ensure_available()

    assert transitions()["open"] == before["open"] + 1
    opened = [r for r in caplog.records if r.msg == "payment_breaker.opened"]
    assert len(opened) == 1
    assert opened[0].levelname == "ERROR"
    assert opened[0].from_state == "closed" and opened[0].failures == 3
    assert opened[0].reset_seconds == 30


def test_describe_says_where_it_stands_for_the_admin_overview(settings):
    assert breaker.describe() == "closed: payments go through"
    trip(2)
    assert breaker.describe() == "closed: payments go through (2 consecutive failure(s))"
    trip(1)
    assert breaker.describe().startswith("open: payments refused for ")
    settings.PAYMENT_BREAKER_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    assert breaker.describe().startswith("unguarded:")


def test_fewer_failures_than_the_threshold_keep_it_closed_and_a_success_resets_the_count():
    trip(2)
    assert breaker.snapshot().failures == 2
    assert authorize("card").startswith("auth_")
    assert breaker.snapshot().failures == 0
    trip(2)
    snap = breaker.snapshot()
    assert (snap.state, snap.failures, snap.retry_after_seconds) == ("closed", 2, 0)
    assert not breaker.is_open()


def test_a_decline_is_an_answer_of_the_provider_not_a_failure():
    trip(2)
    for _ in range(5):
        with pytest.raises(GatewayDeclined):
            authorize("test_decline")
    assert breaker.snapshot().state == "closed"
    assert breaker.snapshot().failures == 0
    trip(2)
    assert breaker.snapshot().state == "closed"


def test_call_with_retries_stops_retrying_once_the_breaker_opens(settings):
    settings.PAYMENT_MAX_TRIES = 6
    gateway = get_gateway()
    with pytest.raises(GatewayUnavailable) as refused:
        call_with_retries(lambda: gateway.authorize(_request("test_timeout")))
    assert len(CALLS) == 3  # the threshold; the fourth try was refused, no more were made
    assert refused.value.attempts == 4


# --- half-open: one trial -------------------------------------------------------------


def test_after_the_reset_period_one_successful_trial_closes_it(settings, caplog):
    caplog.set_level(logging.INFO, logger="payments.breaker")
    settings.PAYMENT_BREAKER_RESET_SECONDS = 1
    before = transitions()
    trip()
    wait_until_half_open()
    assert breaker.snapshot().state == "open"  # still open until a call is tried

    assert authorize("card").startswith("auth_")

    assert breaker.snapshot().state == "closed"
    assert authorize("card").startswith("auth_")
    assert len(CALLS) == 5
    after = transitions()
    assert {k: after[k] - before[k] for k in after} == {"open": 1, "half_open": 1, "closed": 1}
    assert events(caplog) == [
        "payment_breaker.opened",
        "payment_breaker.half_opened",
        "payment_breaker.closed",
    ]


def test_a_failed_trial_opens_it_for_another_period(settings):
    settings.PAYMENT_BREAKER_RESET_SECONDS = 1
    trip()
    wait_until_half_open()

    with pytest.raises(GatewayTimeout):  # the trial's own error
        authorize("test_timeout")

    assert breaker.snapshot().state == "open"
    assert breaker.retry_after_seconds() >= 1
    with pytest.raises(GatewayUnavailable):
        authorize("card")
    assert len(CALLS) == 4


def test_only_one_trial_call_is_let_through_at_a_time(settings):
    settings.PAYMENT_BREAKER_RESET_SECONDS = 1
    trip()
    wait_until_half_open()
    results: list[str] = []
    trial = threading.Thread(target=lambda: results.append(authorize("test_gate")))
    trial.start()
    try:
        assert INSIDE.wait(5)
        # The trial is at the provider: every other call is refused, not sent.
        assert breaker.is_open()
        for _ in range(3):
            with pytest.raises(GatewayUnavailable):
                authorize("card")
        assert CALLS.count(("authorize", "card")) == 0
    finally:
        GATE.set()
        trial.join(10)
    assert results == ["auth_gated"]
    assert breaker.snapshot().state == "closed"
    assert authorize("card").startswith("auth_")


# --- Redis unreachable: fails open ----------------------------------------------------


def test_unreachable_redis_fails_open_and_says_so_once(settings, caplog):
    caplog.set_level(logging.INFO, logger="payments.breaker")
    settings.PAYMENT_BREAKER_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    for _ in range(6):  # twice the threshold: never refused
        with pytest.raises(GatewayTimeout):
            authorize("test_timeout")
    assert authorize("card").startswith("auth_")
    assert len(CALLS) == 7

    snap = breaker.snapshot()
    assert (snap.state, snap.storage_available, snap.retry_after_seconds) == ("closed", False, 0)
    assert not breaker.is_open()
    unavailable = [r for r in caplog.records if r.msg == "payment_breaker.storage_unavailable"]
    assert len(unavailable) == 1
    assert unavailable[0].levelname == "WARNING"
    assert unavailable[0].behaviour == "fail_open"


# --- the confirm ----------------------------------------------------------------------


@pytest.mark.django_db
def test_confirm_while_open_answers_503_before_the_payment_ttl_and_keeps_the_holds():
    stock = stocked(on_hand=10)
    cart = cart_in_checkout((stock, 2))
    holds_before = list(
        Reservation.objects.filter(cart=cart).values_list("id", "status", "expires_at")
    )
    trip()

    started = time.monotonic()
    response = confirm(APIClient(), cart, key="k-1")
    elapsed = time.monotonic() - started

    error = assert_error(response, 503, "PAYMENT_UNAVAILABLE")
    retry_after = int(response["Retry-After"])
    assert 28 <= retry_after <= 30
    assert error["details"] == {"retry_after_seconds": retry_after}
    assert elapsed < 1.0
    assert ("authorize", "card") not in CALLS
    assert Payment.objects.count() == 0
    assert Order.objects.count() == 0
    cart.refresh_from_db()
    assert cart.status == "checkout"
    assert (
        list(Reservation.objects.filter(cart=cart).values_list("id", "status", "expires_at"))
        == holds_before
    )
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (10, 2)

    # Once it closes, the same key pays.
    breaker.reset()
    paid = confirm(APIClient(), cart, key="k-1")
    assert paid.status_code == 201, paid.content
    assert Payment.objects.get().status == PaymentStatus.CAPTURED


class _OpenOnExtension(logging.Handler):
    """Opens the breaker the moment the confirm extends the holds: as if another worker
    tripped it between the confirm's check and its first gateway call."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "reservation.extended":
            for _ in range(3):
                with pytest.raises(GatewayTimeout):
                    authorize("test_timeout")


@pytest.mark.django_db
def test_breaker_opening_after_the_check_refuses_the_call_and_keeps_the_cart_in_checkout():
    stock = stocked(on_hand=10)
    cart = cart_in_checkout((stock, 2))
    handler = _OpenOnExtension()
    reservations_logger = logging.getLogger("inventory.reservations")
    reservations_logger.addHandler(handler)
    try:
        response = confirm(APIClient(), cart, key="k-1")
    finally:
        reservations_logger.removeHandler(handler)

    assert_error(response, 503, "PAYMENT_UNAVAILABLE")
    assert int(response["Retry-After"]) >= 28
    assert ("authorize", "card") not in CALLS
    payment = Payment.objects.get()
    assert (payment.status, payment.error_code, payment.attempts) == (
        PaymentStatus.FAILED,
        "PAYMENT_UNAVAILABLE",
        0,
    )
    assert Cart.objects.get(id=cart.id).status == "checkout"
    assert set(Reservation.objects.filter(cart=cart).values_list("status", flat=True)) == {
        "pending"
    }

    breaker.reset()
    paid = confirm(APIClient(), cart, key="k-2")
    assert paid.status_code == 201, paid.content
    assert Payment.objects.filter(status=PaymentStatus.CAPTURED).count() == 1


@pytest.mark.django_db
def test_a_declined_confirm_does_not_count_towards_opening_it():
    for n in range(4):
        cart = cart_in_checkout((stocked(on_hand=5), 1), payment_method="test_decline")
        assert_error(confirm(APIClient(), cart, key=f"k-{n}"), 402, "PAYMENT_DECLINED")
    assert breaker.snapshot().state == "closed"
    cart = cart_in_checkout((stocked(on_hand=5), 1))
    assert confirm(APIClient(), cart, key="k-card").status_code == 201


# --- /metrics -------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_show_the_shared_state(client):
    def page() -> str:
        return client.get("/metrics").content.decode()

    closed = page()
    assert 'payment_breaker_state{state="closed"} 1.0' in closed
    assert 'payment_breaker_state{state="open"} 0.0' in closed
    assert "payment_breaker_storage_up 1.0" in closed
    for to in ("open", "half_open", "closed"):
        assert f'payment_breaker_transitions_total{{to="{to}"}}' in closed
    trip()
    opened = page()
    assert 'payment_breaker_state{state="open"} 1.0' in opened
    assert 'payment_breaker_state{state="closed"} 0.0' in opened
    assert "payment_breaker_consecutive_failures 3.0" in opened
    retry = [line for line in opened.splitlines() if line.startswith("payment_breaker_retry_after")]
    assert retry and 28 <= float(retry[0].split()[1]) <= 30


@pytest.mark.django_db
def test_metrics_say_when_the_breaker_storage_is_down(client, settings):
    settings.PAYMENT_BREAKER_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    text = client.get("/metrics").content.decode()
    assert "payment_breaker_storage_up 0.0" in text
    assert 'payment_breaker_state{state="closed"} 1.0' in text


# --- refunds --------------------------------------------------------------------------


@pytest.mark.django_db
def test_refunds_back_off_while_it_is_open_without_using_an_attempt(
    django_capture_on_commit_callbacks,
):
    from orders.services import cancel_order
    from payments.refunds import retry_due_refunds
    from tests.support import paid_order

    order = paid_order((stocked(on_hand=5), 1))
    trip()
    with django_capture_on_commit_callbacks(execute=True):
        cancel_order(order_id=order.id, actor="test", by_staff=True)
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.refund_attempts) == (PaymentStatus.REFUND_PENDING, 0)
    assert retry_due_refunds(batch_size=10) == 0
    payment.refresh_from_db()
    assert (payment.refund_attempts, payment.needs_attention) == (0, False)

    breaker.reset()
    assert retry_due_refunds(batch_size=10) == 1
    payment.refresh_from_db()
    assert (payment.status, payment.refund_attempts) == (PaymentStatus.REFUNDED, 1)
