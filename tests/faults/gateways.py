"""Gateways for fault tests: the dummy gateway with the provider failing at a chosen
point, configured through ``PAYMENT_GATEWAY`` like any other gateway. Every call is
recorded in ``CALLS`` (method name, payment reference, authorization id)."""

from __future__ import annotations

import os
import time

from django.conf import settings
from django.core.cache import cache

from payments.gateway import DummyGateway, GatewayDeclined, GatewayTimeout, PaymentRequest

CALLS: list[tuple[str, str, str]] = []


class RecordingGateway(DummyGateway):
    def authorize(self, request: PaymentRequest) -> str:
        CALLS.append(("authorize", request.reference, ""))
        return super().authorize(request)

    def capture(self, request: PaymentRequest, *, authorization_id: str) -> str:
        CALLS.append(("capture", request.reference, authorization_id))
        return super().capture(request, authorization_id=authorization_id)

    def void(self, request: PaymentRequest, *, authorization_id: str) -> None:
        CALLS.append(("void", request.reference, authorization_id))
        return super().void(request, authorization_id=authorization_id)


class CaptureTimeoutGateway(RecordingGateway):
    """Authorizes, then never answers a capture of ``test_capture_timeout`` in time."""

    CAPTURE_TIMEOUT = "test_capture_timeout"

    def capture(self, request: PaymentRequest, *, authorization_id: str) -> str:
        if request.method == self.CAPTURE_TIMEOUT:
            CALLS.append(("capture", request.reference, authorization_id))
            time.sleep(settings.PAYMENT_TIMEOUT_SECONDS)
            raise GatewayTimeout("The payment provider did not answer the capture in time")
        return super().capture(request, authorization_id=authorization_id)


class CaptureAndVoidTimeoutGateway(CaptureTimeoutGateway):
    """As above, and the void of that authorization times out as well."""

    def void(self, request: PaymentRequest, *, authorization_id: str) -> None:
        CALLS.append(("void", request.reference, authorization_id))
        time.sleep(settings.PAYMENT_TIMEOUT_SECONDS)
        raise GatewayTimeout("The payment provider did not answer the void in time")


class DiesAfterCaptureGateway(RecordingGateway):
    """The provider captures ``test_hang_after_capture`` and its answer never comes back
    (the call hangs, whatever the timeout): the worker is killed meanwhile."""

    HANG = "test_hang_after_capture"

    def capture(self, request: PaymentRequest, *, authorization_id: str) -> str:
        payment_id = super().capture(request, authorization_id=authorization_id)
        if request.method == self.HANG:
            time.sleep(3600)
        return payment_id


class DiesAtCaptureGateway(RecordingGateway):
    """The first capture of ``test_hang_at_capture`` never reaches the provider: the
    payment stays authorized there, and the call hangs until the worker is killed."""

    HANG = "test_hang_at_capture"

    def capture(self, request: PaymentRequest, *, authorization_id: str) -> str:
        # Once per gunicorn master (the workers' parent): the provider is back afterwards.
        hang_key = f"{self.PREFIX}:hang-at-capture:{os.getppid()}"
        if request.method == self.HANG and cache.add(hang_key, 1, 3600):
            time.sleep(3600)
        return super().capture(request, authorization_id=authorization_id)


class RefusesTwoRefundsGateway(DummyGateway):
    """Refuses the first two refunds of each payment, then refunds; the count is kept in
    Redis, so every process (web worker, reconcile job) sees the same provider."""

    def refund(self, payment, *, payment_id, amount, idempotency_key):
        key = f"{self.PREFIX}:refund-refusals:{payment.reference}"
        cache.add(key, 0, self.RECORD_SECONDS)
        if cache.incr(key) <= 2:
            raise GatewayDeclined("The provider refused the refund (try again later)")
        return super().refund(
            payment, payment_id=payment_id, amount=amount, idempotency_key=idempotency_key
        )
