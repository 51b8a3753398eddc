"""Stock rows to sell from, and the stock invariant of SPEC §3."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.db import connection
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce

from inventory import services
from inventory.models import Reservation, StockLevel, Warehouse
from tests.support.factories import ProductFactory, StockLevelFactory


def stocked(*, on_hand: int = 10, warehouse: Warehouse | None = None, **product: Any) -> StockLevel:
    """A product (made with ``product``'s fields; a ``price`` may be a string) with
    ``on_hand`` units in ``warehouse``, the default warehouse unless given."""
    if isinstance(product.get("price"), str):
        product["price"] = Decimal(product["price"])
    kwargs = {"warehouse": warehouse} if warehouse is not None else {}
    return StockLevelFactory(product=ProductFactory(**product), on_hand=on_hand, **kwargs)


def stocks(count: int, on_hand: int = 100) -> list[StockLevel]:
    """``count`` products, each with ``on_hand`` units in the default warehouse."""
    return [stocked(on_hand=on_hand) for _ in range(count)]


def reserve(
    stock: StockLevel, quantity: int = 1, *, ttl_seconds: int = 300, cart=None
) -> Reservation:
    """A pending reservation of ``quantity`` on ``stock`` made by the reservation service
    (for ``cart`` when given)."""
    [reservation] = services.reserve(
        lines=[services.ReservationLine(stock.product_id, stock.warehouse_id, quantity)],
        ttl_seconds=ttl_seconds,
        cart_id=cart.id if cart else None,
    )
    return reservation


def numbers(stock: StockLevel) -> tuple[int, int]:
    """``(on_hand, reserved)`` of a stock row as committed now."""
    stock.refresh_from_db()
    return stock.on_hand, stock.reserved


def ensure_default_warehouse() -> None:
    """Transactional tests flush the database, the data migration's default warehouse
    included; put it back before a transactional test uses it."""
    if not Warehouse.objects.filter(is_default=True).exists():
        Warehouse.objects.get_or_create(
            code="default", defaults={"name": "Default warehouse", "is_default": True}
        )


def assert_stock_invariants() -> None:
    """SPEC §3 over the whole database: every stock row's ``reserved`` is the sum of its
    pending reservations and ``0 <= reserved <= on_hand``; checked by SQL and by
    ``manage.py check_inventory``."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT s.id, s.on_hand, s.reserved,
                   COALESCE((SELECT sum(quantity) FROM inventory_reservation r
                              WHERE r.stock_level_id = s.id AND r.status = 'pending'), 0)
              FROM inventory_stocklevel s
            """
        )
        rows = cursor.fetchall()
    broken = [r for r in rows if r[2] != r[3] or not 0 <= r[2] <= r[1]]
    assert broken == [], f"(id, on_hand, reserved, pending sum): {broken}"
    out = StringIO()
    call_command("check_inventory", stdout=out, stderr=out)  # raises on drift


def assert_counters_exact() -> None:
    """SPEC §3 over the whole table: reserved == sum of pending quantities, and
    0 <= reserved <= on_hand (the ORM's view, cheap enough to check after every step of a
    race; ``assert_stock_invariants`` also runs ``check_inventory``)."""
    drift = list(
        StockLevel.objects.annotate(
            pending=Coalesce(
                Sum("reservations__quantity", filter=Q(reservations__status="pending")), 0
            )
        )
        .exclude(reserved=F("pending"))
        .values_list("id", "reserved", "pending")
    )
    assert drift == []
    assert not StockLevel.objects.filter(Q(reserved__lt=0) | Q(reserved__gt=F("on_hand"))).exists()
