"""``Reservation.order`` becomes the one link between an order and its reservations.

``OrderItem.reservation`` stored the same link a second time. First every reservation
linked from an item gets ``order`` set to that item's order (a pending one, whose
confirmation had not happened yet, included); then the item's field goes. An item's
reservations are now the order's reservations of its product, exact because an order
has one item per product (the new unique constraint; a cart has one line per product).

Reverse: the field comes back and each item gets the first (lowest id) reservation of
its order and product.
"""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def _check_foreign_keys_now(schema_editor):
    # The foreign keys are checked at commit by default; PostgreSQL refuses to alter a
    # table with checks still pending, so run them before the schema changes that follow.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


def link_reservations_to_orders(apps, schema_editor):
    OrderItem = apps.get_model("orders", "OrderItem")
    Reservation = apps.get_model("inventory", "Reservation")
    Reservation.objects.filter(order_item__isnull=False).update(
        order_id=Subquery(
            OrderItem.objects.filter(reservation_id=OuterRef("id")).values("order_id")[:1]
        )
    )
    _check_foreign_keys_now(schema_editor)


def link_items_to_reservations(apps, schema_editor):
    OrderItem = apps.get_model("orders", "OrderItem")
    Reservation = apps.get_model("inventory", "Reservation")
    OrderItem.objects.update(
        reservation_id=Subquery(
            Reservation.objects.filter(
                order_id=OuterRef("order_id"), product_id=OuterRef("product_id")
            )
            .order_by("id")
            .values("id")[:1]
        )
    )
    _check_foreign_keys_now(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0003_default_warehouse"),
        ("orders", "0002_order_number_sequence"),
    ]

    operations = [
        migrations.RunPython(link_reservations_to_orders, link_items_to_reservations),
        migrations.RemoveField(model_name="orderitem", name="reservation"),
        migrations.AddConstraint(
            model_name="orderitem",
            constraint=models.UniqueConstraint(
                fields=("order", "product"), name="order_item_one_line_per_product"
            ),
        ),
    ]
