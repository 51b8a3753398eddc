"""Gateways for fault tests: the dummy gateway with the provider failing at a chosen
point, configured through ``PAYMENT_GATEWAY`` like any other gateway. Every call is
recorded in ``CALLS`` (method name, payment reference, authorization id)."""

from __future__ import annotations

import time

from django.conf import settings

from payments.gateway import DummyGateway, GatewayTimeout, PaymentRequest

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
