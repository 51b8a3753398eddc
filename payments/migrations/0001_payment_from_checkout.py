"""Payment, moved here from ``checkout`` with its table and rows.

State: the model as it was in checkout (``checkout.0003`` removed it there). Database: the
table ``checkout_payment`` is renamed to ``payments_payment``; its rows, indexes,
constraints and the foreign keys pointing at carts and orders stay as they are.
"""

import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("carts", "0002_initial"),
        ("orders", "0001_initial"),
        ("checkout", "0003_move_payment_to_payments"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Payment',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('idempotency_key', models.CharField(blank=True, default='', max_length=255)),
                        ('gateway', models.CharField(max_length=64)),
                        ('method', models.CharField(max_length=64)),
                        ('amount', models.DecimalField(decimal_places=2, max_digits=14)),
                        ('currency', models.CharField(max_length=3)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('authorized', 'Authorized'), ('captured', 'Captured'), ('voided', 'Voided'), ('failed', 'Failed'), ('refunded', 'Refunded')], default='pending', max_length=16)),
                        ('authorization_id', models.CharField(blank=True, default='', max_length=128)),
                        ('payment_id', models.CharField(blank=True, default='', max_length=128)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('error_code', models.CharField(blank=True, default='', max_length=64)),
                        ('error_message', models.TextField(blank=True, default='')),
                        ('needs_attention', models.BooleanField(default=False)),
                        ('attention_reason', models.TextField(blank=True, default='')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('authorized_at', models.DateTimeField(blank=True, null=True)),
                        ('captured_at', models.DateTimeField(blank=True, null=True)),
                        ('voided_at', models.DateTimeField(blank=True, null=True)),
                        ('cart', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='payments', to='carts.cart')),
                        ('order', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='payments', to='orders.order')),
                    ],
                    options={
                        'ordering': ['-created_at'],
                        'db_table': 'payments_payment',
                        'indexes': [models.Index(condition=models.Q(('order__isnull', True), ('status', 'captured')), fields=['created_at'], name='payment_captured_no_order')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'authorized', 'captured', 'voided', 'failed', 'refunded'])), name='payment_status_valid')],
                    },
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE checkout_payment RENAME TO payments_payment",
                    reverse_sql="ALTER TABLE payments_payment RENAME TO checkout_payment",
                ),
            ],
        ),
    ]
