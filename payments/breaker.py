"""The payment gateway's circuit breaker (SPEC §13 "A gateway outage degrades checkout
only").

Every gateway call (authorize, capture, status, refund, ...; not a void, see
:data:`UNGUARDED_CALLS`) passes one breaker whose state is shared by every web and Celery
worker through Redis: pybreaker's ``CircuitBreaker`` with its ``CircuitRedisStorage``
(keys under ``settings.PAYMENT_BREAKER_NAMESPACE`` in ``PAYMENT_BREAKER_REDIS_URL``).

- **Closed**: calls go through. ``PAYMENT_BREAKER_FAILURES`` consecutive failures (a
  timeout, a transport error, a gateway bug) open it. A decline is the provider's answer,
  not a failure: it counts as a success and resets the count.
- **Open** for ``PAYMENT_BREAKER_RESET_SECONDS``: every call is refused at once with
  :class:`~payments.gateway.GatewayUnavailable` (``retry_after`` = seconds until it
  half-opens), and nothing is sent to the provider.
- **Half-open**: exactly one trial call is let through, across all processes (a Redis
  ``SET NX`` lease; pybreaker alone would let every caller through while half-open). Its
  success closes the breaker; its failure opens it for another period. The others are
  refused while the trial runs.

Callers that can decide before calling (the confirm, which must refuse before it extends
the holds; the reconcile and refund jobs, which back off instead of failing an attempt)
ask :func:`retry_after_seconds` / :func:`is_open`. :func:`snapshot` is what ``/metrics``
and the admin show.

**Fails open.** If Redis cannot be reached, the breaker behaves as closed (every call goes
to the gateway, unguarded) and logs ``payment_breaker.storage_unavailable`` once per
outage and per process (``payment_breaker.storage_recovered`` when it is back). A Redis
error marks the storage down for ``STORAGE_RETRY_SECONDS``, so an outage adds no latency
to payments beyond one failed connection attempt per period.

Transitions made by this process are logged (``payment_breaker.opened`` /
``half_opened`` / ``closed``) and counted in ``payment_breaker_transitions_total{to}``.
pybreaker holds a process-wide lock for the duration of a call, so each thread gets its own
``CircuitBreaker`` object; they share the state through Redis.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pybreaker
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from core import metrics
from payments.gateway import GatewayDeclined, GatewayUnavailable, PaymentGateway

logger = logging.getLogger("payments.breaker")

T = TypeVar("T")

CLOSED = pybreaker.STATE_CLOSED
OPEN = pybreaker.STATE_OPEN
HALF_OPEN = pybreaker.STATE_HALF_OPEN
STATES = (CLOSED, OPEN, HALF_OPEN)

# After a Redis error the storage is not asked again for this long (the breaker acts
# closed meanwhile), so an outage costs one failed connection per period, not per call.
STORAGE_RETRY_SECONDS = 5.0
# Socket timeouts of the breaker's Redis client: a Redis that hangs must not hang payments.
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class BreakerSnapshot:
    """Where the breaker stands now, as every process sees it."""

    state: str  # closed | open | half-open (closed when the storage is unavailable)
    failures: int  # consecutive failures counted so far
    retry_after_seconds: int  # 0: a call would be let through now
    storage_available: bool

    @property
    def is_open(self) -> bool:
        return self.retry_after_seconds > 0


# --- the Redis client and the storage -------------------------------------------------


class _StorageHealth:
    """Per process: whether the breaker's Redis answered lately; logs each change once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down_until = 0.0
        self.down = False

    def skip(self) -> bool:
        return time.monotonic() < self.down_until

    def failed(self, exc: Exception) -> None:
        with self._lock:
            self.down_until = time.monotonic() + STORAGE_RETRY_SECONDS
            newly = not self.down
            self.down = True
        if newly:
            logger.warning(
                "payment_breaker.storage_unavailable",
                extra={
                    "event": "payment_breaker.storage_unavailable",
                    "error": f"{exc.__class__.__name__}: {exc}",
                    "behaviour": "fail_open",
                    "message_detail": "The payment breaker's Redis is unreachable: the breaker "
                    "fails open and gateway calls go through unguarded.",
                },
            )

    def answered(self) -> None:
        if not self.down:
            return
        with self._lock:
            was_down, self.down = self.down, False
        if was_down:
            logger.info(
                "payment_breaker.storage_recovered",
                extra={"event": "payment_breaker.storage_recovered"},
            )


_health = _StorageHealth()


class _GuardedRedis:
    """The Redis client as the storage sees it: every command reports to
    :data:`_health`, and while the storage is marked down commands fail at once."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        command = getattr(self._client, name)

        def run(*args: Any, **kwargs: Any) -> Any:
            if _health.skip():
                raise RedisConnectionError("payment breaker storage marked unavailable")
            try:
                result = command(*args, **kwargs)
            except RedisError as exc:
                _health.failed(exc)
                raise
            _health.answered()
            return result

        return run


class _QuietLog:
    """pybreaker logs every Redis error with a traceback (one per call during an outage);
    :class:`_StorageHealth` logs the outage once instead."""

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        logger.debug("pybreaker storage: " + msg, *args)


class _Storage(pybreaker.CircuitRedisStorage):
    logger = _QuietLog()  # type: ignore[assignment]

    def _initialize_redis_state(self, state: str) -> None:
        # Fails open; the state is initialised by the next read that finds none.
        with contextlib.suppress(RedisError):
            super()._initialize_redis_state(state)


class _Breaker(pybreaker.CircuitBreaker):
    """pybreaker's breaker; transitions made here are logged and counted."""

    def open(self) -> bool:
        # Two processes can count the last failure at once; the one that finds the shared
        # state already open does not report the transition again.
        previous = self._state_storage.state
        result = super().open()
        if previous != OPEN:
            _transition(previous, OPEN, failures=self.fail_counter)
        return result

    def half_open(self) -> None:
        previous = self._state.name
        super().half_open()
        _transition(previous, HALF_OPEN)

    def close(self) -> None:
        previous = self._state.name
        super().close()
        _transition(previous, CLOSED)


def _transition(previous: str, new: str, **extra: Any) -> None:
    metrics.payment_breaker_transitions_total.labels(to=new.replace("-", "_")).inc()
    event = {
        OPEN: "payment_breaker.opened",
        HALF_OPEN: "payment_breaker.half_opened",
        CLOSED: "payment_breaker.closed",
    }[new]
    fields = {"event": event, "from_state": previous, "to_state": new, **extra}
    if new == OPEN:
        fields["reset_seconds"] = settings.PAYMENT_BREAKER_RESET_SECONDS
        logger.error(event, extra=fields)
    else:
        logger.warning(event, extra=fields)


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
_local = threading.local()


def _config() -> tuple[str, str, int, int]:
    return (
        settings.PAYMENT_BREAKER_REDIS_URL,
        settings.PAYMENT_BREAKER_NAMESPACE,
        settings.PAYMENT_BREAKER_FAILURES,
        settings.PAYMENT_BREAKER_RESET_SECONDS,
    )


def _client(url: str) -> redis.Redis:
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(
                url,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 0),
            )
        return _clients[url]


def _redis() -> _GuardedRedis:
    return _GuardedRedis(_client(settings.PAYMENT_BREAKER_REDIS_URL))


def _breaker() -> _Breaker:
    """This thread's breaker object for the current settings (state lives in Redis)."""
    config = _config()
    cached = getattr(_local, "breaker", None)
    if cached is not None and cached[0] == config:
        return cached[1]
    _url, namespace, failures, reset_seconds = config
    storage = _Storage(CLOSED, _redis(), namespace=namespace)
    breaker = _Breaker(
        fail_max=failures,
        reset_timeout=reset_seconds,
        exclude=[GatewayDeclined],
        state_storage=storage,
        name=namespace,
        # The call that trips the breaker answers with its own error (a timeout).
        throw_new_error_on_trip=False,
    )
    _local.breaker = (config, breaker)
    return breaker


def _key(name: str) -> str:
    return f"{settings.PAYMENT_BREAKER_NAMESPACE}:pybreaker:{name}"


def _trial_lease_seconds() -> int:
    # One gateway call is bounded by PAYMENT_TIMEOUT_SECONDS; a lease left by a killed
    # process lapses soon after that.
    return math.ceil(settings.PAYMENT_TIMEOUT_SECONDS) + 1


# --- reading the state ----------------------------------------------------------------


def _read() -> tuple[bytes | None, bytes | None, bytes | None, int]:
    """State, failure count, opened-at and the trial lease's TTL, in one round trip."""
    if _health.skip():
        raise RedisConnectionError("payment breaker storage marked unavailable")
    try:
        pipe = _client(settings.PAYMENT_BREAKER_REDIS_URL).pipeline(transaction=False)
        pipe.mget([_key("state"), _key("fail_counter"), _key("opened_at")])
        pipe.ttl(_key("trial"))
        (raw_state, raw_failures, raw_opened), trial_ttl = pipe.execute()
    except RedisError as exc:
        _health.failed(exc)
        raise
    _health.answered()
    return raw_state, raw_failures, raw_opened, int(trial_ttl)


def snapshot() -> BreakerSnapshot:
    """The shared state now (one Redis round trip). With Redis unreachable: closed,
    ``storage_available`` false."""
    try:
        raw_state, raw_failures, raw_opened, trial_ttl = _read()
    except RedisError:
        return BreakerSnapshot(CLOSED, 0, 0, storage_available=False)
    state = raw_state.decode() if raw_state else CLOSED
    if state not in STATES:
        state = CLOSED
    failures = int(raw_failures or 0)
    retry_after = 0
    if state == OPEN:
        retry_after = _seconds_until_half_open(raw_opened)
        if retry_after == 0 and trial_ttl > 0:
            retry_after = trial_ttl
    elif state == HALF_OPEN and trial_ttl > 0:
        retry_after = trial_ttl
    return BreakerSnapshot(state, failures, retry_after, storage_available=True)


def describe(snap: BreakerSnapshot | None = None) -> str:
    """One line for people (the admin overview): where the breaker stands now."""
    snap = snap or snapshot()
    if not snap.storage_available:
        return "unguarded: the breaker's Redis is unreachable, payments go through (fails open)"
    if snap.state == HALF_OPEN and snap.retry_after_seconds:
        return "half-open: a trial payment is being made; payments refused meanwhile"
    if snap.state != CLOSED and snap.retry_after_seconds:
        return f"open: payments refused for {snap.retry_after_seconds} s more"
    if snap.state != CLOSED:
        return "open: the next payment is let through as a trial"
    if snap.failures:
        return f"closed: payments go through ({snap.failures} consecutive failure(s))"
    return "closed: payments go through"


def _seconds_until_half_open(raw_opened: bytes | None) -> int:
    if not raw_opened:
        return 0
    opened_at = int(raw_opened)
    remaining = opened_at + settings.PAYMENT_BREAKER_RESET_SECONDS - time.time()
    return max(0, math.ceil(remaining))


def retry_after_seconds() -> int:
    """Seconds until the breaker lets a call through; 0 if it would now (closed, the
    reset period over, or Redis unreachable — the breaker fails open)."""
    return snapshot().retry_after_seconds


def is_open() -> bool:
    """Whether a gateway call would be refused now. Jobs that call the gateway (the
    reconcile job, refunds) skip their attempt while this is true instead of failing it."""
    return retry_after_seconds() > 0


def ensure_available() -> None:
    """Raises :class:`GatewayUnavailable` (with ``retry_after``) while the breaker refuses
    calls; returns otherwise. No gateway call is made."""
    retry_after = retry_after_seconds()
    if retry_after:
        raise GatewayUnavailable(retry_after=retry_after)


# --- calling through it ---------------------------------------------------------------


def call(fn: Callable[[], T]) -> T:
    """Runs the gateway call ``fn`` through the breaker. Raises
    :class:`GatewayUnavailable` without calling ``fn`` while the breaker is open (or
    another process runs the half-open trial); otherwise returns ``fn()`` or re-raises its
    error after counting it."""
    breaker = _breaker()
    if _health.skip():
        return fn()  # fails open: the storage is down
    snap = snapshot()
    if not snap.storage_available:
        return fn()
    if snap.state == CLOSED:
        return _through(breaker, fn)
    if snap.retry_after_seconds:
        raise GatewayUnavailable(retry_after=snap.retry_after_seconds)
    # Open and its period over, or half-open with no trial running: claim the one trial.
    client = _redis()
    try:
        claimed = client.set(_key("trial"), "1", nx=True, ex=_trial_lease_seconds())
    except RedisError:
        return fn()
    if not claimed:
        raise GatewayUnavailable(retry_after=1)
    try:
        return _through(breaker, fn)
    finally:
        with contextlib.suppress(RedisError):  # else the lease lapses by itself
            client.delete(_key("trial"))


def _through(breaker: _Breaker, fn: Callable[[], T]) -> T:
    try:
        return breaker.call(fn)
    except pybreaker.CircuitBreakerError:
        # Another process opened it between the read above and this call.
        raise GatewayUnavailable(retry_after=max(1, retry_after_seconds())) from None


def reset() -> None:
    """Closes the breaker and clears its counters (ops, tests)."""
    keys = ("state", "fail_counter", "success_counter", "opened_at", "trial")
    with contextlib.suppress(RedisError):
        _client(settings.PAYMENT_BREAKER_REDIS_URL).delete(*(_key(k) for k in keys))
    if hasattr(_local, "breaker"):
        del _local.breaker
    _health.down_until = 0.0


# --- the gateway seen through the breaker ---------------------------------------------


# Calls that bypass the breaker: a void is the compensation of an authorization that
# went through the breaker; it must be tried even while the breaker is open (the shopper's
# money is held otherwise), and its answer says nothing about whether the provider can
# take payments, so it neither counts as a failure nor resets the count.
UNGUARDED_CALLS = frozenset({"void"})


class GuardedGateway:
    """A gateway whose every method call (except :data:`UNGUARDED_CALLS`) passes the
    breaker; other attributes (``name``, ...) are the wrapped gateway's, which is
    ``wrapped``."""

    def __init__(self, gateway: PaymentGateway) -> None:
        self.wrapped = gateway

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.wrapped, name)
        if name.startswith("_") or name in UNGUARDED_CALLS or not callable(value):
            return value

        def through_breaker(*args: Any, **kwargs: Any) -> Any:
            return call(lambda: value(*args, **kwargs))

        return through_breaker


def guarded(gateway: PaymentGateway) -> PaymentGateway:
    """``gateway`` with every call passing the breaker."""
    if isinstance(gateway, GuardedGateway):
        return gateway
    return cast(PaymentGateway, GuardedGateway(gateway))
