"""``manage.py seed_demo``: the demo catalog, idempotently."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand

from inventory import selectors, services
from inventory.errors import StockBelowReserved
from inventory.models import Product, StockLevel, Warehouse

IN_STOCK = "in_stock"
LOW = "low"
OUT = "out"

# sku, name, price, stock in the default warehouse (a number, LOW or OUT)
DEMO_CATALOG: list[tuple[str, str, str, int | str]] = [
    ("DEMO-MUG", "Enamel camping mug", "12.50", 40),
    ("DEMO-TEE", "Organic cotton T-shirt", "24.00", 25),
    ("DEMO-CAP", "Six-panel cap", "18.00", 15),
    ("DEMO-BOTTLE", "Insulated steel bottle", "29.90", 30),
    ("DEMO-NOTEBOOK", "Dot-grid notebook", "9.50", 60),
    ("DEMO-PENS", "Gel pens, pack of 3", "4.20", 100),
    ("DEMO-POSTER", "Limited-edition poster", "35.00", LOW),
    ("DEMO-HOODIE", "Zip hoodie", "55.00", OUT),
]
CURRENCY = "USD"


def _target(stock: int | str) -> int:
    if stock == OUT:
        return 0
    if stock == LOW:
        # Below LOW_STOCK_THRESHOLD so that the storefront shows "Low stock" (at least
        # 1: with a threshold of 0 or 1 no quantity is low).
        return max(1, min(3, settings.LOW_STOCK_THRESHOLD - 1))
    return int(stock)


class Command(BaseCommand):
    help = (
        "Creates the demo catalog (8 products priced in USD) and sets their stock in the "
        "default warehouse, one of them low and one out of stock. Idempotent: existing "
        "products are left as they are; stock is set back to the demo level, but never "
        "below what is reserved. Running it twice changes nothing."
    )

    def handle(self, *args, **options) -> None:
        warehouse = selectors.warehouse_get(code=None)
        existing = {p.sku: p for p in Product.objects.filter(sku__in=[c[0] for c in DEMO_CATALOG])}
        stock = {
            row.product_id: row
            for row in StockLevel.objects.filter(
                warehouse=warehouse, product__sku__in=[c[0] for c in DEMO_CATALOG]
            )
        }
        created = restocked = unchanged = 0
        for sku, name, price, level in DEMO_CATALOG:
            product = existing.get(sku)
            if product is None:
                product, made = Product.objects.get_or_create(
                    sku=sku,
                    defaults={"name": name, "price": Decimal(price), "currency": CURRENCY},
                )
                if made:
                    created += 1
                    self.stdout.write(f"created product {sku}: {name}, {price} {CURRENCY}")
            row = stock.get(product.id)
            if self._set_stock(product, warehouse, row, _target(level)):
                restocked += 1
            else:
                unchanged += 1
        self.stdout.write(
            f"seed_demo: {len(DEMO_CATALOG)} demo products in warehouse {warehouse.code}: "
            f"{created} created, stock set for {restocked}, {unchanged} unchanged"
        )

    def _set_stock(
        self, product: Product, warehouse: Warehouse, row: StockLevel | None, target: int
    ) -> bool:
        """Sets on_hand to ``target`` (or to what is reserved, if more); True if it
        changed anything."""
        on_hand, reserved = (row.on_hand, row.reserved) if row else (None, 0)
        wanted = max(target, reserved)
        if on_hand == wanted:
            return False
        try:
            result = services.set_stock(
                product=product, warehouse=warehouse, on_hand=wanted, actor="seed_demo"
            )
        except StockBelowReserved as exc:  # a shopper reserved meanwhile
            wanted = exc.details["reserved"]
            result = services.set_stock(
                product=product, warehouse=warehouse, on_hand=wanted, actor="seed_demo"
            )
        note = f" (target {target}, {result.reserved} reserved)" if wanted != target else ""
        change = f"new stock row, on_hand {result.on_hand}"
        if on_hand is not None:
            change = f"on_hand {on_hand} -> {result.on_hand}"
        self.stdout.write(f"stock {product.sku} @ {warehouse.code}: {change}{note}")
        return True
