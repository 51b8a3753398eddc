"""The payment gateway interface, the dummy gateway and the retry policy."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from itertools import pairwise

import pytest

from payments.breaker import GuardedGateway
from payments.gateway import (
    DummyGateway,
    GatewayDeclined,
    GatewayError,
    GatewayTimeout,
    PaymentGateway,
    PaymentRequest,
    call_with_retries,
    get_gateway,
)

REFERENCE = ["ref-1"]


@pytest.fixture(autouse=True)
def _fresh_reference():
    """The dummy gateway remembers every reference (in Redis): one of its own per test."""
    REFERENCE[0] = f"ref-{uuid.uuid4().hex}"


def request(method: str) -> PaymentRequest:
    return PaymentRequest(
        reference=REFERENCE[0], amount=Decimal("12.50"), currency="USD", method=method
    )


class RecordingGateway(DummyGateway):
    """The dummy gateway, counting its calls."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def authorize(self, request: PaymentRequest) -> str:
        self.calls.append("authorize")
        return super().authorize(request)


def test_default_gateway_is_the_dummy_gateway_behind_the_circuit_breaker():
    gateway = get_gateway()
    assert isinstance(gateway, GuardedGateway)
    assert isinstance(gateway.wrapped, DummyGateway)
    assert gateway.name == "dummy"


def test_gateway_is_chosen_by_setting(settings):
    settings.PAYMENT_GATEWAY = "tests.checkout.test_payments.RecordingGateway"
    assert isinstance(get_gateway().wrapped, RecordingGateway)


def test_card_is_authorized_and_captured_and_a_capture_cannot_be_voided():
    gateway = DummyGateway()
    authorization_id = gateway.authorize(request("card"))
    assert authorization_id.startswith("auth_")
    payment_id = gateway.capture(request("card"), authorization_id=authorization_id)
    assert payment_id.startswith("pay_")
    with pytest.raises(GatewayDeclined):
        gateway.void(request("card"), authorization_id=authorization_id)


def test_an_uncaptured_authorization_is_voidable_and_then_cannot_be_captured():
    gateway = DummyGateway()
    authorization_id = gateway.authorize(request("card"))
    assert gateway.void(request("card"), authorization_id=authorization_id) is None
    with pytest.raises(GatewayDeclined):
        gateway.capture(request("card"), authorization_id=authorization_id)


def test_test_decline_is_declined_at_authorization():
    with pytest.raises(GatewayDeclined):
        DummyGateway().authorize(request("test_decline"))


def test_test_capture_fail_authorizes_then_fails_at_capture():
    gateway = DummyGateway()
    authorization_id = gateway.authorize(request("test_capture_fail"))
    with pytest.raises(GatewayDeclined):
        gateway.capture(request("test_capture_fail"), authorization_id=authorization_id)


def test_test_timeout_times_out_after_the_gateway_timeout(settings):
    settings.PAYMENT_TIMEOUT_SECONDS = 0.05
    started = time.monotonic()
    with pytest.raises(GatewayTimeout):
        DummyGateway().authorize(request("test_timeout"))
    assert time.monotonic() - started >= 0.05


def test_timeouts_are_retried_up_to_max_tries_with_exponential_backoff(settings):
    settings.PAYMENT_MAX_TRIES = 4
    settings.PAYMENT_RETRY_BASE_SECONDS = 0.1
    calls: list[float] = []

    def call() -> str:
        calls.append(time.monotonic())
        raise GatewayTimeout()

    with pytest.raises(GatewayTimeout) as err:
        call_with_retries(call)
    assert err.value.attempts == 4
    assert len(calls) == 4
    waits = [b - a for a, b in pairwise(calls)]
    # 0.1, 0.2, 0.4: each wait the base times 2**n, give or take the scheduler (a sleep
    # never ends early and, on a busy machine, late by well under half the wait) ...
    for n, wait in enumerate(waits):
        expected = 0.1 * 2**n
        assert expected * 0.95 <= wait < expected * 1.5, (n, waits)
    # ... so each wait is about twice the one before: a constant or linear wait fails.
    for shorter, longer in pairwise(waits):
        assert 1.3 < longer / shorter < 3.2, waits


def test_a_timeout_followed_by_success_returns_the_result_and_the_tries(settings):
    settings.PAYMENT_MAX_TRIES = 3
    answers = iter([GatewayTimeout(), "auth_ok"])

    def call() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert call_with_retries(call) == ("auth_ok", 2)


def test_a_decline_is_not_retried(settings):
    settings.PAYMENT_MAX_TRIES = 3
    calls = []

    def call() -> str:
        calls.append(1)
        raise GatewayDeclined("no")

    with pytest.raises(GatewayDeclined) as err:
        call_with_retries(call)
    assert err.value.attempts == 1
    assert len(calls) == 1


def test_an_unexpected_gateway_exception_becomes_a_gateway_error():
    def call() -> str:
        raise KeyError("boom")

    with pytest.raises(GatewayError) as err:
        call_with_retries(call)
    assert not isinstance(err.value, GatewayTimeout)
    assert "KeyError" in err.value.message


def test_the_interface_refuses_to_be_used_unimplemented():
    with pytest.raises(NotImplementedError):
        PaymentGateway().authorize(request("card"))
