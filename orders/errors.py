"""Order errors, each with its API.md code."""

from __future__ import annotations

from core.errors import ApplicationError


class OrderNotFound(ApplicationError):
    code = "ORDER_NOT_FOUND"
    status_code = 404
    message = "Order not found"


class InvalidOrderStatus(ApplicationError):
    code = "INVALID_ORDER_STATUS"
    status_code = 409
    message = "The order's status does not allow this"

    def __init__(self, status: str, to: str | None = None, message: str | None = None):
        details: dict[str, str] = {"status": status}
        if to is not None:
            details["requested"] = to
        super().__init__(message, details=details)
        self.status = status
