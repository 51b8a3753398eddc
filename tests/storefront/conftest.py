"""Fixtures for the storefront: a real headless Chromium against pytest-django's live
server (``tests.support.chromium``, with a screenshot of every failing browser test in
``test-artifacts/``) and stock set up through the inventory service."""

from __future__ import annotations

import pytest

from tests.support.chromium import (
    browser,
    default_warehouse,
    pytest_runtest_makereport,
)

__all__ = ("browser", "default_warehouse", "pytest_runtest_makereport")


@pytest.fixture
def stocked_product(default_warehouse):
    """``stocked_product(name=..., on_hand=..., price=...)`` → a product whose stock was set
    through the inventory service."""
    from decimal import Decimal

    from inventory import services
    from tests.support.factories import ProductFactory

    def make(*, name: str, on_hand: int, price: str = "10.00"):
        product = ProductFactory(name=name, price=Decimal(price))
        services.set_stock(
            product=product, warehouse=default_warehouse, on_hand=on_hand, actor="test"
        )
        return product

    return make
