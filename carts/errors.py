"""Cart errors, each with its API.md code."""

from core.errors import ApplicationError


class CartNotFound(ApplicationError):
    code = "CART_NOT_FOUND"
    status_code = 404
    message = "Cart not found"


class CartEmpty(ApplicationError):
    code = "CART_EMPTY"
    status_code = 400
    message = "The cart has no items"


class InvalidCartStatus(ApplicationError):
    code = "INVALID_CART_STATUS"
    status_code = 409
    message = "The cart's status does not allow this"

    def __init__(self, status: str, message: str | None = None):
        super().__init__(message, details={"status": status})
        self.status = status


class QuantityLimitExceeded(ApplicationError):
    """A cart line above its product's ``max_per_order`` (SPEC §15)."""

    code = "QUANTITY_LIMIT_EXCEEDED"
    status_code = 400
    message = "The line is above the product's limit per order"

    def __init__(self, sku: str, limit: int, message: str | None = None):
        super().__init__(
            message or f"At most {limit} of {sku} may be in one order",
            details={"sku": sku, "limit": limit},
        )
        self.sku = sku
        self.limit = limit
