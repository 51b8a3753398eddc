"""Payment gateways (SPEC §8): an interface of three calls and the dummy gateway.

The gateway is chosen by ``settings.PAYMENT_GATEWAY`` (a dotted path). Every call talks
to the network, so callers must never hold a row lock while making one. A gateway is
expected to be idempotent per ``PaymentRequest.reference`` (our Payment id), which is what
makes retrying a timed-out call safe.

Gateway failures are :class:`GatewayError` subclasses: :class:`GatewayDeclined` (the
provider answered "no") and :class:`GatewayTimeout` (no answer in time; retried with
exponential backoff by :func:`call_with_retries`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.utils.module_loading import import_string
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

T = TypeVar("T")


@dataclass(frozen=True)
class PaymentRequest:
    """What a gateway needs to know about one payment."""

    reference: str
    amount: Decimal
    currency: str
    method: str


class GatewayError(Exception):
    """The gateway call failed; ``attempts`` is set by :func:`call_with_retries`."""

    code = "gateway_error"

    def __init__(self, message: str = "The payment gateway failed", *, attempts: int = 1):
        super().__init__(message)
        self.message = message
        self.attempts = attempts


class GatewayDeclined(GatewayError):
    code = "declined"


class GatewayTimeout(GatewayError):
    code = "timeout"


class PaymentGateway:
    """Interface of a payment gateway. ``authorize`` returns an authorization id,
    ``capture`` a payment (capture) id; ``void`` cancels an uncaptured authorization."""

    name = "abstract"

    def authorize(self, request: PaymentRequest) -> str:
        raise NotImplementedError

    def capture(self, request: PaymentRequest, *, authorization_id: str) -> str:
        raise NotImplementedError

    def void(self, request: PaymentRequest, *, authorization_id: str) -> None:
        raise NotImplementedError


class DummyGateway(PaymentGateway):
    """A real, configured gateway without a provider behind it; its behaviour is driven
    by the payment method: ``card`` (and any other method) succeeds, ``test_decline`` is
    declined at authorization, ``test_capture_fail`` fails at capture, ``test_timeout``
    times out at authorization (after waiting ``PAYMENT_TIMEOUT_SECONDS``)."""

    name = "dummy"

    DECLINE = "test_decline"
    CAPTURE_FAIL = "test_capture_fail"
    TIMEOUT = "test_timeout"

    def authorize(self, request: PaymentRequest) -> str:
        if request.method == self.DECLINE:
            raise GatewayDeclined("The card was declined")
        if request.method == self.TIMEOUT:
            time.sleep(settings.PAYMENT_TIMEOUT_SECONDS)
            raise GatewayTimeout("The payment provider did not answer in time")
        return f"auth_{uuid.uuid4().hex}"

    def capture(self, request: PaymentRequest, *, authorization_id: str) -> str:
        if request.method == self.CAPTURE_FAIL:
            raise GatewayDeclined("The capture was refused")
        return f"pay_{uuid.uuid4().hex}"

    def void(self, request: PaymentRequest, *, authorization_id: str) -> None:
        return None


def get_gateway() -> PaymentGateway:
    """The gateway named by ``settings.PAYMENT_GATEWAY``."""
    return import_string(settings.PAYMENT_GATEWAY)()


def call_with_retries(call: Callable[[], T]) -> tuple[T, int]:
    """Runs ``call``, retrying a :class:`GatewayTimeout` with exponential backoff
    (``PAYMENT_MAX_TRIES`` tries in all, waits of ``PAYMENT_RETRY_BASE_SECONDS`` times 1, 2,
    4, ...). Returns the result and the number of tries. Any other exception is turned
    into a :class:`GatewayError` (a gateway bug must not leave a checkout half done); the
    raised error carries ``attempts``."""
    attempts = 0

    def attempt() -> T:
        nonlocal attempts
        attempts += 1
        try:
            return call()
        except GatewayError:
            raise
        except Exception as exc:
            raise GatewayError(f"The payment gateway failed: {exc.__class__.__name__}") from exc

    base = settings.PAYMENT_RETRY_BASE_SECONDS
    retrying = Retrying(
        retry=retry_if_exception_type(GatewayTimeout),
        stop=stop_after_attempt(settings.PAYMENT_MAX_TRIES),
        wait=wait_exponential(multiplier=base, min=base, max=base * 2**10),
        reraise=True,
    )
    try:
        result = retrying(attempt)
    except GatewayError as exc:
        exc.attempts = attempts
        raise
    except RetryError as exc:  # pragma: no cover - reraise=True re-raises the last error
        raise GatewayTimeout(attempts=attempts) from exc
    return result, attempts
