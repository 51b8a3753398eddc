"""Checkout errors, each with its API.md code."""

from __future__ import annotations

from core.errors import ApplicationError


class CheckoutExpired(ApplicationError):
    code = "CHECKOUT_EXPIRED"
    status_code = 410
    message = "The checkout expired; the cart is now abandoned"


class MissingCheckoutData(ApplicationError):
    code = "MISSING_CHECKOUT_DATA"
    status_code = 400
    message = "The checkout is missing required data"

    def __init__(self, missing: list[str], message: str | None = None):
        super().__init__(message, details={"missing": list(missing)})
        self.missing = list(missing)


class PaymentDeclined(ApplicationError):
    code = "PAYMENT_DECLINED"
    status_code = 402
    message = "The payment was declined"


class PaymentCaptureFailed(ApplicationError):
    code = "PAYMENT_CAPTURE_FAILED"
    status_code = 402
    message = "The payment could not be captured; the authorization was voided"


class PaymentTimeout(ApplicationError):
    code = "PAYMENT_TIMEOUT"
    status_code = 504
    message = "The payment provider did not answer in time"


class IdempotencyConflict(ApplicationError):
    code = "IDEMPOTENCY_CONFLICT"
    status_code = 409
    message = "This Idempotency-Key was used with a different request"
