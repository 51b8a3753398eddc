"""The stock status shown for an available quantity: the bands of LOW_STOCK_THRESHOLD."""

from __future__ import annotations

import pytest

from inventory.stock import stock_status


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.LOW_STOCK_THRESHOLD = 5


@pytest.mark.parametrize(
    ("available", "status"),
    [
        (-1, "out_of_stock"),
        (0, "out_of_stock"),
        (1, "low_stock"),
        (4, "low_stock"),
        (5, "in_stock"),
        (500, "in_stock"),
    ],
)
def test_stock_status_follows_the_low_stock_threshold(available, status):
    assert stock_status(available) == status
