"""Payment gateways (SPEC §8, §13): the interface and the dummy gateway.

The gateway is chosen by ``settings.PAYMENT_GATEWAY`` (a dotted path). Every call talks
to the network, so callers must never hold a row lock while making one. A gateway is
expected to be idempotent per ``PaymentRequest.reference`` (our Payment id), which is what
makes retrying a timed-out call safe, and per refund idempotency key.

Gateway failures are :class:`GatewayError` subclasses: :class:`GatewayDeclined` (the
provider answered "no") and :class:`GatewayTimeout` (no answer in time; retried with
exponential backoff by :func:`call_with_retries`).

**Deadline.** The gateway part of one confirm runs inside :func:`payment_deadline`
(``PAYMENT_DEADLINE_SECONDS``): :func:`call_with_retries` starts no try and sleeps no
backoff past it, and :func:`call_timeout` tells a gateway how long its next network call
may take (``PAYMENT_TIMEOUT_SECONDS``, cut to what is left of the deadline). The last
part of the deadline (:func:`void_reserve`) is kept for the void that undoes a timed-out
payment.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
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


class GatewayUnavailable(GatewayError):
    """The circuit breaker (``payments.breaker``) refused the call: nothing was sent to
    the provider. ``retry_after`` is the number of seconds until it lets a call through."""

    code = "unavailable"

    def __init__(
        self,
        message: str = "The payment gateway is unavailable",
        *,
        retry_after: int,
        attempts: int = 1,
    ):
        super().__init__(message, attempts=attempts)
        self.retry_after = retry_after


class GatewayState:
    """What the provider knows of one payment (the answer of ``status``)."""

    NOT_FOUND = "not_found"  # the provider never saw the reference: nothing happened
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    DECLINED = "declined"
    REFUNDED = "refunded"
    UNKNOWN = "unknown"  # the provider cannot say


@dataclass(frozen=True)
class GatewayStatus:
    """The provider's view of a payment: its ``state`` and the ids it gave."""

    state: str
    authorization_id: str = ""
    payment_id: str = ""
    refund_ids: tuple[str, ...] = field(default_factory=tuple)


class PaymentGateway:
    """Interface of a payment gateway. ``authorize`` returns an authorization id,
    ``capture`` a payment (capture) id; ``void`` cancels an uncaptured authorization (an
    empty ``authorization_id`` voids whatever was authorized under the reference);
    ``refund`` gives back a captured amount, once per ``idempotency_key`` (a repeat
    answers the same refund id), and returns the refund id; ``status`` answers what the
    provider knows of the payment (:class:`GatewayStatus`)."""

    name = "abstract"

    def status(self, payment: PaymentRequest) -> GatewayStatus:
        raise NotImplementedError

    def refund(
        self, payment: PaymentRequest, *, payment_id: str, amount: Decimal, idempotency_key: str
    ) -> str:
        raise NotImplementedError

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
    times out at authorization (after waiting :func:`call_timeout`), ``test_refund_fail``
    captures normally and refuses every refund.

    Like a provider it remembers what it did to each payment, so ``status`` tells the
    truth to any process: the record of a reference (state, authorization id, payment
    id, refund ids) is kept in the cache's Redis under ``dummy-gateway:<reference>`` for
    ``RECORD_SECONDS``, and a refund's idempotency key is claimed there with an atomic
    ``SET NX`` (two processes refunding with one key refund once).
    """

    name = "dummy"

    DECLINE = "test_decline"
    CAPTURE_FAIL = "test_capture_fail"
    TIMEOUT = "test_timeout"
    REFUND_FAIL = "test_refund_fail"
    RECORD_SECONDS = 30 * 24 * 3600
    PREFIX = "dummy-gateway"

    # --- the provider's memory ---
    def _key(self, reference: str) -> str:
        return f"{self.PREFIX}:{reference}"

    def _record(self, reference: str) -> dict[str, object]:
        try:
            return dict(cache.get(self._key(reference)) or {})
        except Exception as exc:  # the provider's store is down: the call fails
            raise GatewayError(f"The payment provider is unavailable: {exc}") from exc

    def _remember(self, reference: str, **changes: object) -> None:
        record = self._record(reference)
        record.update(changes)
        try:
            cache.set(self._key(reference), record, self.RECORD_SECONDS)
        except Exception as exc:
            raise GatewayError(f"The payment provider is unavailable: {exc}") from exc

    # --- the calls ---
    def authorize(self, request: PaymentRequest) -> str:
        if request.method == self.DECLINE:
            self._remember(request.reference, state=GatewayState.DECLINED)
            raise GatewayDeclined("The card was declined")
        if request.method == self.TIMEOUT:
            time.sleep(call_timeout())
            raise GatewayTimeout("The payment provider did not answer in time")
        record = self._record(request.reference)
        if record.get("authorization_id"):  # idempotent per reference
            return str(record["authorization_id"])
        authorization_id = f"auth_{uuid.uuid4().hex}"
        self._remember(
            request.reference, state=GatewayState.AUTHORIZED, authorization_id=authorization_id
        )
        return authorization_id

    def capture(self, request: PaymentRequest, *, authorization_id: str) -> str:
        if request.method == self.CAPTURE_FAIL:
            raise GatewayDeclined("The capture was refused")
        record = self._record(request.reference)
        if record.get("payment_id"):
            return str(record["payment_id"])
        if record.get("state") == GatewayState.VOIDED:
            raise GatewayDeclined("The authorization was voided")
        payment_id = f"pay_{uuid.uuid4().hex}"
        self._remember(request.reference, state=GatewayState.CAPTURED, payment_id=payment_id)
        return payment_id

    def void(self, request: PaymentRequest, *, authorization_id: str) -> None:
        record = self._record(request.reference)
        if record.get("state") in (GatewayState.CAPTURED, GatewayState.REFUNDED):
            raise GatewayDeclined("A captured payment cannot be voided; refund it")
        self._remember(request.reference, state=GatewayState.VOIDED)

    def refund(
        self, payment: PaymentRequest, *, payment_id: str, amount: Decimal, idempotency_key: str
    ) -> str:
        if payment.method == self.REFUND_FAIL:
            raise GatewayDeclined("The refund was refused")
        record = self._record(payment.reference)
        if record.get("payment_id") != payment_id:
            raise GatewayDeclined("No such captured payment")
        refund_id = f"refund_{uuid.uuid4().hex}"
        try:
            claimed = cache.add(
                f"{self.PREFIX}:refund:{idempotency_key}", refund_id, self.RECORD_SECONDS
            )
            if not claimed:
                return str(cache.get(f"{self.PREFIX}:refund:{idempotency_key}"))
        except Exception as exc:
            raise GatewayError(f"The payment provider is unavailable: {exc}") from exc
        refunds = [*record.get("refund_ids", []), refund_id]
        self._remember(payment.reference, state=GatewayState.REFUNDED, refund_ids=refunds)
        return refund_id

    def status(self, payment: PaymentRequest) -> GatewayStatus:
        record = self._record(payment.reference)
        if not record:
            return GatewayStatus(state=GatewayState.NOT_FOUND)
        return GatewayStatus(
            state=str(record.get("state", GatewayState.UNKNOWN)),
            authorization_id=str(record.get("authorization_id", "")),
            payment_id=str(record.get("payment_id", "")),
            refund_ids=tuple(record.get("refund_ids", [])),
        )


def get_gateway() -> PaymentGateway:
    """The gateway named by ``settings.PAYMENT_GATEWAY``, every call of which passes the
    shared circuit breaker (``payments.breaker``)."""
    from payments.breaker import guarded  # the breaker module builds on this one

    return guarded(import_string(settings.PAYMENT_GATEWAY)())


# --- the deadline of one confirm's gateway part ---------------------------------------

# A try is not started with less than this left before the deadline.
MIN_TRY_SECONDS = 0.05
_deadline: ContextVar[float | None] = ContextVar("payment_deadline", default=None)
# The part of the deadline the current calls must leave free (for a void after them).
_reserve: ContextVar[float] = ContextVar("payment_deadline_reserve", default=0.0)


@contextlib.contextmanager
def payment_deadline(seconds: float | None = None) -> Iterator[None]:
    """Every gateway call inside ends by ``seconds`` from now (default
    ``PAYMENT_DEADLINE_SECONDS``): tries, backoff and each call's timeout. Nested uses keep
    the earlier deadline."""
    seconds = settings.PAYMENT_DEADLINE_SECONDS if seconds is None else seconds
    ends = time.monotonic() + seconds
    current = _deadline.get()
    token = _deadline.set(ends if current is None else min(current, ends))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining_seconds() -> float | None:
    """Seconds left before the current deadline (None outside :func:`payment_deadline`)."""
    ends = _deadline.get()
    return None if ends is None else max(0.0, ends - time.monotonic())


def call_timeout() -> float:
    """How long the next network call to the gateway may wait for its answer:
    ``PAYMENT_TIMEOUT_SECONDS``, cut to what is left of the deadline (less the part that
    the calls under way must leave for a void)."""
    left = remaining_seconds()
    if left is None:
        return settings.PAYMENT_TIMEOUT_SECONDS
    return max(0.0, min(settings.PAYMENT_TIMEOUT_SECONDS, left - _reserve.get()))


def void_reserve() -> float:
    """The part of the deadline kept for undoing a payment (one void): a quarter of
    ``PAYMENT_DEADLINE_SECONDS``, at most one call's timeout."""
    return min(settings.PAYMENT_TIMEOUT_SECONDS, settings.PAYMENT_DEADLINE_SECONDS / 4)


def call_with_retries(call: Callable[[], T], *, reserve: float = 0.0) -> tuple[T, int]:
    """Runs ``call``, retrying a :class:`GatewayTimeout` with exponential backoff
    (``PAYMENT_MAX_TRIES`` tries in all, waits of ``PAYMENT_RETRY_BASE_SECONDS`` times 1, 2,
    4, ...). Returns the result and the number of tries. Any other exception is turned
    into a :class:`GatewayError` (a gateway bug must not leave a checkout half done); the
    raised error carries ``attempts``.

    Inside :func:`payment_deadline` no try starts, and no backoff sleeps, past the
    deadline less ``reserve`` seconds (kept for a void): the last error is raised then,
    or a :class:`GatewayTimeout` if no try could start at all."""
    attempts = 0

    def budget() -> float | None:
        left = remaining_seconds()
        return None if left is None else left - reserve

    def out_of_time(retry_state) -> bool:
        left = budget()
        return left is not None and left - (retry_state.upcoming_sleep or 0) < MIN_TRY_SECONDS

    first = budget()
    if first is not None and first < MIN_TRY_SECONDS:
        raise GatewayTimeout("The payment deadline passed before the gateway was called")

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
        stop=stop_after_attempt(settings.PAYMENT_MAX_TRIES) | out_of_time,
        wait=wait_exponential(multiplier=base, min=base, max=base * 2**10),
        reraise=True,
    )
    reserved = _reserve.set(reserve)
    try:
        result = retrying(attempt)
    except GatewayError as exc:
        exc.attempts = attempts
        raise
    except RetryError as exc:  # pragma: no cover - reraise=True re-raises the last error
        raise GatewayTimeout(attempts=attempts) from exc
    finally:
        _reserve.reset(reserved)
    return result, attempts
