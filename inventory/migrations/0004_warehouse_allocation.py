"""Several warehouses (SPEC §14): a warehouse's allocation ``priority`` and ``is_active``
flag, and what chose each reservation's warehouse. Database defaults keep SQL written
without the new columns working."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0003_default_warehouse"),
    ]

    operations = [
        migrations.AddField(
            model_name="reservation",
            name="allocation_strategy",
            field=models.CharField(
                blank=True,
                choices=[
                    ("priority", "By warehouse priority"),
                    ("most_available", "Most available first"),
                    ("fewest_splits", "Fewest splits"),
                    ("pinned", "Pinned to its warehouse"),
                ],
                db_default="",
                default="",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="warehouse",
            name="is_active",
            field=models.BooleanField(db_default=True, default=True),
        ),
        migrations.AddField(
            model_name="warehouse",
            name="priority",
            field=models.IntegerField(db_default=0, default=0),
        ),
    ]
