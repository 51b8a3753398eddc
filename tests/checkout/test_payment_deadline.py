"""The gateway part of one confirm ends within ``PAYMENT_DEADLINE_SECONDS`` (SPEC §13):
tries, backoff and each call's timeout are cut to the deadline, and on the deadline the
authorization is voided, the stock released, and the shopper gets 504 PAYMENT_TIMEOUT."""

from __future__ import annotations

import time

import pytest

from carts.models import CartStatus
from payments.gateway import (
    GatewayTimeout,
    call_timeout,
    call_with_retries,
    payment_deadline,
    remaining_seconds,
)
from payments.models import Payment, PaymentStatus
from tests.support import assert_error, cart_in_checkout, confirm, numbers, stocked


def test_outside_a_deadline_a_call_may_take_the_gateway_timeout(settings):
    settings.PAYMENT_TIMEOUT_SECONDS = 3.0
    assert remaining_seconds() is None
    assert call_timeout() == 3.0


def test_each_call_timeout_is_cut_to_what_is_left_of_the_deadline(settings):
    settings.PAYMENT_TIMEOUT_SECONDS = 3.0
    with payment_deadline(1.0):
        assert 0.9 < call_timeout() <= 1.0
        with payment_deadline(5.0):  # a nested deadline never extends the outer one
            assert call_timeout() <= 1.0


def test_retries_and_backoff_stop_at_the_deadline(settings):
    settings.PAYMENT_MAX_TRIES = 50
    settings.PAYMENT_RETRY_BASE_SECONDS = 0.05
    settings.PAYMENT_TIMEOUT_SECONDS = 0.2
    calls: list[float] = []

    def hangs() -> str:
        calls.append(time.monotonic())
        time.sleep(call_timeout())
        raise GatewayTimeout()

    started = time.monotonic()
    with payment_deadline(1.0), pytest.raises(GatewayTimeout) as err:
        call_with_retries(hangs, reserve=0.25)
    elapsed = time.monotonic() - started

    # Stopped by the deadline less the reserve (each call's timeout cut to it), long
    # before 50 tries.
    assert 0.6 <= elapsed <= 0.8, elapsed
    assert 2 <= err.value.attempts == len(calls) < 50


def test_no_try_starts_once_the_deadline_has_passed():
    calls = []
    with payment_deadline(0.0), pytest.raises(GatewayTimeout):
        call_with_retries(lambda: calls.append(1))
    assert calls == []


@pytest.mark.django_db
def test_a_hanging_gateway_answers_504_within_the_deadline_and_releases(api_client, settings):
    settings.PAYMENT_DEADLINE_SECONDS = 2
    settings.PAYMENT_TIMEOUT_SECONDS = 0.4
    settings.PAYMENT_MAX_TRIES = 20
    settings.PAYMENT_RETRY_BASE_SECONDS = 0.01
    stock = stocked(on_hand=10)
    cart = cart_in_checkout((stock, 2), payment_method="test_timeout")

    started = time.monotonic()
    response = confirm(api_client, cart)
    elapsed = time.monotonic() - started

    assert_error(response, 504, "PAYMENT_TIMEOUT")
    # The gateway part ends by the deadline; the rest is the request's database work
    # (well under a second, give or take a busy machine). Without the deadline the 20
    # tries of 0.4 s would take over 8 s.
    assert 1.5 <= elapsed < settings.PAYMENT_DEADLINE_SECONDS + 1.0, elapsed
    payment = Payment.objects.get(cart=cart)
    assert payment.status == PaymentStatus.FAILED and not payment.needs_attention
    assert 2 <= payment.attempts < settings.PAYMENT_MAX_TRIES
    cart.refresh_from_db()
    assert cart.status == CartStatus.ACTIVE
    assert numbers(stock) == (10, 0)
