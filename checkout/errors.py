"""Checkout errors, each with its API.md code."""

from __future__ import annotations

from carts.errors import InvalidCartStatus
from carts.models import CartStatus
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


class PaymentUnavailable(ApplicationError):
    """The gateway's circuit breaker is open: refused before any gateway call and before
    the holds were extended; nothing charged, the cart stays in checkout."""

    code = "PAYMENT_UNAVAILABLE"
    status_code = 503
    message = "Payments are unavailable at the moment; nothing was charged"

    def __init__(self, retry_after_seconds: int, message: str | None = None):
        self.retry_after_seconds = max(1, int(retry_after_seconds))
        super().__init__(message, details={"retry_after_seconds": self.retry_after_seconds})

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class IdempotencyConflict(ApplicationError):
    code = "IDEMPOTENCY_CONFLICT"
    status_code = 409
    message = "This Idempotency-Key was used with a different request"


class PaymentInFlight(InvalidCartStatus):
    """A confirm found the cart's own payment still in flight (API.md v1.1): 409
    ``INVALID_CART_STATUS`` with ``details.status`` ``checkout`` and
    ``details.retry_after_seconds`` (and ``Retry-After``): when the payment counts as
    interrupted, the same request resolves it with the gateway and finishes."""

    def __init__(self, retry_after_seconds: int, message: str | None = None):
        super().__init__(
            CartStatus.CHECKOUT,
            message or "Confirmation in progress",
        )
        self.retry_after_seconds = max(1, int(retry_after_seconds))
        self.details["retry_after_seconds"] = self.retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class PurchaseLimitReached(ApplicationError):
    """A logged-in customer over a product's ``max_per_customer`` within
    ``PURCHASE_LIMIT_WINDOW_SECONDS`` (SPEC §15); ``already`` is what they ordered or hold
    elsewhere, without the line refused."""

    code = "PURCHASE_LIMIT_REACHED"
    status_code = 409
    message = "The purchase limit for this product is reached"

    def __init__(self, sku: str, limit: int, already: int, message: str | None = None):
        super().__init__(
            message or f"At most {limit} of {sku} per customer; {already} already ordered or held",
            details={"sku": sku, "limit": limit, "already": already},
        )
        self.sku = sku
        self.limit = limit
        self.already = already
