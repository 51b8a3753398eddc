"""Moving models between apps keeps every row: a database holding carts, reservations,
payments and orders under the schema before the layers (Payment in ``checkout``, the
reservation ↔ order link on both sides) migrates to today's schema with all of it intact,
and ``check_inventory`` finds no drift.

The test migrates the test database backwards, writes rows through the historical
models, and migrates forwards again (it always ends on the latest migrations).
"""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

# The schema before the layers: the last migration of each app as it was then.
BEFORE_LAYERS = [
    ("inventory", "0003_default_warehouse"),
    ("carts", "0002_initial"),
    ("orders", "0002_order_number_sequence"),
    ("checkout", "0002_initial"),
    ("payments", None),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    # The state of the named migrations (an app migrated to zero has none to name).
    nodes = [(app, name) for app, name in targets if name is not None]
    return MigrationExecutor(connection).loader.project_state(nodes, at_end=True).apps


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _seed(apps) -> dict[str, object]:
    """A shop as the old schema stored it: one order paid and confirmed, one checkout in
    progress with a payment in flight, one payment captured without an order."""
    Product = apps.get_model("inventory", "Product")
    Warehouse = apps.get_model("inventory", "Warehouse")
    StockLevel = apps.get_model("inventory", "StockLevel")
    Reservation = apps.get_model("inventory", "Reservation")
    Cart = apps.get_model("carts", "Cart")
    CartItem = apps.get_model("carts", "CartItem")
    Order = apps.get_model("orders", "Order")
    OrderItem = apps.get_model("orders", "OrderItem")
    Payment = apps.get_model("checkout", "Payment")
    IdempotencyKey = apps.get_model("checkout", "IdempotencyKey")

    now = timezone.now()
    # migrate made it; a transactional test before this one may have flushed it.
    warehouse, _ = Warehouse.objects.get_or_create(
        is_default=True, defaults={"code": "default", "name": "Default"}
    )
    mug = Product.objects.create(sku="MUG", name="Mug", price=Decimal("9.50"), currency="USD")
    tea = Product.objects.create(sku="TEA", name="Tea", price=Decimal("4.00"), currency="USD")
    # MUG: 2 confirmed (left on_hand), 1 pending; TEA: 3 pending.
    mug_stock = StockLevel.objects.create(product=mug, warehouse=warehouse, on_hand=8, reserved=1)
    tea_stock = StockLevel.objects.create(product=tea, warehouse=warehouse, on_hand=5, reserved=3)

    paid_cart = Cart.objects.create(token_hash="a" * 64, status="completed", completed_at=now)
    CartItem.objects.create(cart=paid_cart, product=mug, warehouse=warehouse, quantity=2)
    order = Order.objects.create(
        number="ORD-900001",
        status="confirmed",
        cart=paid_cart,
        currency="USD",
        subtotal=Decimal("19.00"),
        total=Decimal("19.00"),
        shipping_address={"name": "A", "line1": "1 St", "city": "X", "postal_code": "1"},
        payment_method="card",
    )
    confirmed = Reservation.objects.create(
        stock_level=mug_stock,
        product=mug,
        warehouse=warehouse,
        quantity=2,
        status="confirmed",
        expires_at=now + timedelta(minutes=15),
        cart=paid_cart,
        order=order,
        confirmed_at=now,
    )
    item = OrderItem.objects.create(
        order=order,
        product=mug,
        warehouse=warehouse,
        sku="MUG",
        name="Mug",
        quantity=2,
        unit_price=Decimal("9.50"),
        line_total=Decimal("19.00"),
        reservation=confirmed,
    )
    paid = Payment.objects.create(
        cart=paid_cart,
        order=order,
        gateway="dummy",
        method="card",
        amount=Decimal("19.00"),
        currency="USD",
        status="captured",
        authorization_id="auth-1",
        payment_id="pay-1",
        attempts=1,
        captured_at=now,
    )
    IdempotencyKey.objects.create(
        cart=paid_cart, key="k-1", fingerprint="f" * 64, order=order, response_status=201
    )

    open_cart = Cart.objects.create(
        token_hash="b" * 64, status="checkout", checkout_started_at=now, expires_at=now
    )
    CartItem.objects.create(cart=open_cart, product=mug, warehouse=warehouse, quantity=1)
    CartItem.objects.create(cart=open_cart, product=tea, warehouse=warehouse, quantity=3)
    held = [
        Reservation.objects.create(
            stock_level=stock,
            product=stock.product,
            warehouse=warehouse,
            quantity=quantity,
            expires_at=now + timedelta(minutes=5),
            cart=open_cart,
        )
        for stock, quantity in ((mug_stock, 1), (tea_stock, 3))
    ]
    in_flight = Payment.objects.create(
        cart=open_cart,
        gateway="dummy",
        method="card",
        amount=Decimal("21.50"),
        currency="USD",
        status="authorized",
        authorization_id="auth-2",
    )
    orphan_cart = Cart.objects.create(token_hash="c" * 64, status="checkout")
    unmatched = Payment.objects.create(
        cart=orphan_cart,
        gateway="dummy",
        method="card",
        amount=Decimal("5.00"),
        currency="USD",
        status="captured",
        payment_id="pay-3",
        captured_at=now,
    )
    return {
        "order": order.id,
        "item": item.id,
        "confirmed": confirmed.id,
        "held": sorted(r.id for r in held),
        "payments": {paid.id: order.id, in_flight.id: None, unmatched.id: None},
        "carts": {paid_cart.id, open_cart.id, orphan_cart.id},
    }


def test_a_database_of_the_old_schema_keeps_every_row_through_the_layers_migrations():
    try:
        old = _seed(_migrate(BEFORE_LAYERS))
        apps = _migrate(_latest())
    except BaseException:
        _migrate(_latest())
        raise

    Payment = apps.get_model("payments", "Payment")
    Reservation = apps.get_model("inventory", "Reservation")
    OrderItem = apps.get_model("orders", "OrderItem")
    Cart = apps.get_model("carts", "Cart")
    IdempotencyKey = apps.get_model("checkout", "IdempotencyKey")

    # Payments: same ids, same links, same money; the rules read them as before.
    assert {p.id: p.order_id for p in Payment.objects.all()} == old["payments"]
    assert Payment.objects.get(id=next(iter(old["payments"]))).amount == Decimal("19.00")
    from payments.models import Payment as LivePayment

    assert LivePayment._meta.db_table == "payments_payment"
    assert set(LivePayment.objects.captured_without_order().values_list("order_id", flat=True)) == {
        None
    }
    assert LivePayment.objects.captured_without_order().count() == 1
    assert LivePayment.objects.in_flight().count() == 1

    # Carts, order items, reservations and idempotency records are all still there.
    assert set(Cart.objects.values_list("id", flat=True)) == old["carts"]
    assert list(OrderItem.objects.values_list("id", flat=True)) == [old["item"]]
    assert IdempotencyKey.objects.get(key="k-1").order_id == old["order"]
    confirmed = Reservation.objects.get(id=old["confirmed"])
    assert (confirmed.status, confirmed.order_id) == ("confirmed", old["order"])
    held = Reservation.objects.filter(status="pending").order_by("id")
    assert list(held.values_list("id", flat=True)) == old["held"]
    assert {r.order_id for r in held} == {None}

    # The order's items find their reservations through the one link that is kept.
    from orders.models import Order

    order = Order.objects.get(id=old["order"])
    assert list(order.reservations.values_list("id", flat=True)) == [old["confirmed"]]

    out = io.StringIO()
    call_command("check_inventory", stdout=out)  # raises CommandError on drift
    assert "2 stock rows checked, no drift" in out.getvalue()


def test_the_layers_migrations_go_back_to_the_old_schema_with_the_rows():
    """Rolling back a deploy: the reverse migrations put Payment back in ``checkout``
    (table ``checkout_payment``) with its rows."""
    try:
        old = _seed(_migrate(BEFORE_LAYERS))
        _migrate(_latest())
        apps = _migrate(BEFORE_LAYERS)
        Payment = apps.get_model("checkout", "Payment")
        assert {p.id: p.order_id for p in Payment.objects.all()} == old["payments"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM checkout_payment")
            assert cursor.fetchone()[0] == 3
        item = apps.get_model("orders", "OrderItem").objects.get(id=old["item"])
        assert item.reservation_id == old["confirmed"]
    finally:
        _migrate(_latest())
