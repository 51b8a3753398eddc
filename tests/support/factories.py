"""factory-boy factories for every model. Stock numbers of a StockLevel made here are a
starting state; afterwards they change only through ``inventory.services``."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from carts.models import Cart, CartItem
from inventory.models import Product, Reservation, StockLevel, Warehouse
from tests.support.addresses import ADDRESS


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-for-tests")


class StaffFactory(UserFactory):
    is_staff = True


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    price = Decimal("10.00")
    currency = "USD"


def default_warehouse() -> Warehouse:
    """The default warehouse the data migration creates; made again when a transactional
    test before this one flushed the tables."""
    warehouse = Warehouse.objects.filter(is_default=True).first()
    if warehouse is None:
        warehouse, _ = Warehouse.objects.update_or_create(
            code="default", defaults={"name": "Default warehouse", "is_default": True}
        )
    return warehouse


class WarehouseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Warehouse
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"wh{n}")
    name = factory.LazyAttribute(lambda w: f"Warehouse {w.code}")
    is_default = False


class StockLevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StockLevel

    product = factory.SubFactory(ProductFactory)
    warehouse = factory.LazyFunction(default_warehouse)
    on_hand = 10
    reserved = 0


class CartFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cart

    token_hash = factory.Sequence(lambda n: f"{n:064x}")
    currency = "USD"


class CartItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CartItem

    cart = factory.SubFactory(CartFactory)
    product = factory.SubFactory(ProductFactory)
    warehouse = factory.LazyFunction(default_warehouse)
    quantity = 1


class ReservationFactory(factory.django.DjangoModelFactory):
    """A raw reservation row, for tests of sweepers and drift checks. It does not touch
    ``StockLevel.reserved``; use ``inventory.services.reserve`` for consistent state."""

    class Meta:
        model = Reservation

    stock_level = factory.SubFactory(StockLevelFactory)
    product = factory.LazyAttribute(lambda r: r.stock_level.product)
    warehouse = factory.LazyAttribute(lambda r: r.stock_level.warehouse)
    quantity = 1
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=5))


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "orders.Order"

    number = factory.Sequence(lambda n: f"T{n:08d}")
    cart = factory.SubFactory(CartFactory, status="completed")
    currency = "USD"
    subtotal = Decimal("10.00")
    total = Decimal("10.00")
    shipping_address = factory.LazyFunction(lambda: dict(ADDRESS))
    payment_method = "card"
