"""Catalog creation: new products and warehouses.

Nothing here touches stock numbers or reservations: a new product has no stock row
(``available`` is 0) until ``inventory.services.set_stock`` gives it one.

Invariants kept: skus and warehouse codes are unique (a duplicate, also one created by a
concurrent request, is a :class:`ValidationFailed` with ``DUPLICATE_SKU`` /
``DUPLICATE_WAREHOUSE``, the messages the API's input serializers give too); exactly one
warehouse is the default at every commit (a partial unique index backs it).

Locks: none taken explicitly; a new default warehouse clears the previous default's flag
with an UPDATE in the same transaction as its INSERT; an update writes only the columns
it was given.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from core.errors import ValidationFailed
from inventory.errors import WarehouseNotFound
from inventory.models import Product, Warehouse

logger = logging.getLogger("inventory.catalog")

DUPLICATE_SKU = "A product with this sku already exists."
DUPLICATE_WAREHOUSE = "A warehouse with this code already exists."


def product_create(
    *,
    sku: str,
    name: str,
    price: Decimal,
    currency: str,
    max_per_order: int | None = None,
    max_per_customer: int | None = None,
) -> Product:
    """Creates a product (no stock yet: ``available`` is 0), with its purchase limits
    (SPEC §15; None: no limit). A sku taken meanwhile by a concurrent request is
    reported like any duplicate sku."""
    try:
        with transaction.atomic():
            product = Product.objects.create(
                sku=sku,
                name=name,
                price=price,
                currency=currency,
                max_per_order=max_per_order,
                max_per_customer=max_per_customer,
            )
    except IntegrityError:
        if Product.objects.filter(sku=sku).exists():
            raise ValidationFailed({"sku": [DUPLICATE_SKU]}) from None
        raise
    product.available = 0
    return product


PRODUCT_UPDATABLE_FIELDS = ("name", "price", "max_per_order", "max_per_customer")


def product_update(*, product: Product, changes: dict[str, Any]) -> Product:
    """Changes the given fields of ``product`` (any of ``PRODUCT_UPDATABLE_FIELDS``; a
    purchase limit may be set to None to lift it) with one UPDATE of those columns only.
    The sku and currency do not change: carts and orders refer to them. A new
    ``max_per_order`` applies to lines added or changed from now on, and to checkouts
    started from now on; a new ``max_per_customer`` to holds made from now on."""
    unknown = set(changes) - set(PRODUCT_UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(f"not product fields: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(product, field, value)
    if changes:
        product.save(update_fields=[*changes, "updated_at"])
    logger.info(
        "product.updated",
        extra={
            "event": "product.updated",
            "sku": product.sku,
            # Nested: "name" is a LogRecord attribute and may not be an extra of its own.
            "changes": {
                field: str(value) if isinstance(value, Decimal) else value
                for field, value in changes.items()
            },
        },
    )
    return product


def warehouse_create(
    *, code: str, name: str, is_default: bool, priority: int = 0, is_active: bool = True
) -> Warehouse:
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
                return Warehouse.objects.create(
                    code=code,
                    name=name,
                    is_default=is_default,
                    priority=priority,
                    is_active=is_active,
                )
        except IntegrityError:
            if Warehouse.objects.filter(code=code).exists():
                raise ValidationFailed({"code": [DUPLICATE_WAREHOUSE]}) from None
            if not is_default or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def warehouse_update(
    *,
    code: str,
    name: str | None = None,
    priority: int | None = None,
    is_active: bool | None = None,
) -> Warehouse:
    """Changes a warehouse's name, allocation ``priority`` or ``is_active`` (only those
    given). Deactivating stops new allocations from the warehouse at once (the next
    reserve's candidate rows leave it out); its pending reservations are left to be
    extended, confirmed, released or to expire as usual. Raises
    :class:`WarehouseNotFound` for an unknown code. Stock numbers are not touched."""
    changes = {
        field: value
        for field, value in (("name", name), ("priority", priority), ("is_active", is_active))
        if value is not None
    }
    warehouse = Warehouse.objects.filter(code=code).first()
    if warehouse is None:
        raise WarehouseNotFound(details={"warehouse": code})
    for field, value in changes.items():
        setattr(warehouse, field, value)
    if changes:  # one UPDATE of the given columns only: concurrent edits of others stay
        warehouse.save(update_fields=list(changes))
    logger.info(
        "warehouse.updated",
        # Nested: "name" is a LogRecord attribute and may not be an extra of its own.
        extra={"event": "warehouse.updated", "warehouse": code, "changes": changes},
    )
    return warehouse
