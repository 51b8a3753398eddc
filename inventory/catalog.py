"""Catalog creation: new products and warehouses.

Nothing here touches stock numbers or reservations: a new product has no stock row
(``available`` is 0) until ``inventory.services.set_stock`` gives it one.

Invariants kept: skus and warehouse codes are unique (a duplicate, also one created by a
concurrent request, is a :class:`ValidationFailed` with ``DUPLICATE_SKU`` /
``DUPLICATE_WAREHOUSE``, the messages the API's input serializers give too); exactly one
warehouse is the default at every commit (a partial unique index backs it).

Locks: none taken explicitly; a new default warehouse clears the previous default's flag
with an UPDATE in the same transaction as its INSERT.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction

from core.errors import ValidationFailed
from inventory.models import Product, Warehouse

DUPLICATE_SKU = "A product with this sku already exists."
DUPLICATE_WAREHOUSE = "A warehouse with this code already exists."


def product_create(*, sku: str, name: str, price: Decimal, currency: str) -> Product:
    """Creates a product (no stock yet: ``available`` is 0). A sku taken meanwhile by a
    concurrent request is reported like any duplicate sku."""
    try:
        with transaction.atomic():
            product = Product.objects.create(sku=sku, name=name, price=price, currency=currency)
    except IntegrityError:
        if Product.objects.filter(sku=sku).exists():
            raise ValidationFailed({"sku": [DUPLICATE_SKU]}) from None
        raise
    product.available = 0
    return product


def warehouse_create(*, code: str, name: str, is_default: bool) -> Warehouse:
    """Creates a warehouse; with ``is_default`` the previous default loses the flag in
    the same transaction, so exactly one default exists at every commit. Two concurrent
    new defaults collide on the one-default unique index; the loser retries and wins
    after the other committed (last one wins)."""
    attempts = 5  # each failed attempt means another request's default committed
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                if is_default:
                    Warehouse.objects.filter(is_default=True).update(is_default=False)
                return Warehouse.objects.create(code=code, name=name, is_default=is_default)
        except IntegrityError:
            if Warehouse.objects.filter(code=code).exists():
                raise ValidationFailed({"code": [DUPLICATE_WAREHOUSE]}) from None
            if not is_default or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
