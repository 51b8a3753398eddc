"""Inventory errors, each with its API.md code."""

from __future__ import annotations

from typing import Any

from core.errors import ApplicationError


class InsufficientStock(ApplicationError):
    code = "INSUFFICIENT_STOCK"
    status_code = 400
    message = "Some items are out of stock"

    def __init__(self, items: list[dict[str, Any]], message: str | None = None):
        super().__init__(message, details={"items": items})
        self.items = items


class ProductNotFound(ApplicationError):
    code = "PRODUCT_NOT_FOUND"
    status_code = 404
    message = "Product not found"


class WarehouseNotFound(ApplicationError):
    code = "NOT_FOUND"
    status_code = 404
    message = "Warehouse not found"


class ReservationNotFound(ApplicationError):
    code = "RESERVATION_NOT_FOUND"
    status_code = 404
    message = "Reservation not found"


class ReservationNotActive(ApplicationError):
    code = "RESERVATION_NOT_ACTIVE"
    status_code = 409
    message = "The reservation is not pending"


class ExtensionLimitReached(ApplicationError):
    code = "EXTENSION_LIMIT_REACHED"
    status_code = 409
    message = "No extensions left"


class StockBelowReserved(ApplicationError):
    code = "STOCK_BELOW_RESERVED"
    status_code = 409
    message = "on_hand cannot be set below the reserved quantity"


class InvalidExpiry(ApplicationError):
    code = "VALIDATION_ERROR"
    status_code = 400
    message = "Invalid expiry"

    def __init__(self, message: str):
        super().__init__(message, details={"fields": {"expires_at": [message]}})


class OrderNotFoundForReservation(ApplicationError):
    """Confirming a reservation into an order that does not exist."""

    code = "ORDER_NOT_FOUND"
    status_code = 404
    message = "Order not found"


class StockAvailable(ApplicationError):
    """Joining a waitlist for a quantity that can be reserved now (SPEC §15)."""

    code = "STOCK_AVAILABLE"
    status_code = 409
    message = "This quantity is available now: add it to the cart instead"


class WaitlistEntryNotFound(ApplicationError):
    code = "WAITLIST_ENTRY_NOT_FOUND"
    status_code = 404
    message = "Waitlist entry not found"
