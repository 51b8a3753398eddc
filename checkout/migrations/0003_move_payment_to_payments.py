"""Payment moves to the ``payments`` app: here it leaves checkout's migration state only.

The table and its rows stay; ``payments.0001_payment_from_checkout`` takes the model over
(and renames the table to ``payments_payment``).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("checkout", "0002_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Payment")],
            database_operations=[],
        ),
    ]
