"""Stock status: how an available quantity is shown to shoppers and staff.

A pure rule (no queries): ``available <= 0`` is ``out_of_stock``, ``0 < available <
LOW_STOCK_THRESHOLD`` is ``low_stock``, anything else ``in_stock``. The admin's stock
status filter states the same bands as a query (``inventory.admin.StockStatusFilter``).
"""

from __future__ import annotations

from django.conf import settings


def stock_status(available: int) -> str:
    """``in_stock`` · ``low_stock`` (0 < available < LOW_STOCK_THRESHOLD) · ``out_of_stock``."""
    if available <= 0:
        return "out_of_stock"
    if available < settings.LOW_STOCK_THRESHOLD:
        return "low_stock"
    return "in_stock"
