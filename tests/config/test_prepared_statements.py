"""On a direct connection (``DATABASE_POOL_MODE=session``, the default) parameters are
bound server-side and a statement run often enough on one connection is prepared, so
PostgreSQL skips parsing and planning it (docs/performance.md, "Prepared statements").
Behind a transaction pooler nothing is prepared: ``tests/scaleout/pooled_checks.py``."""

import pytest
from django.conf import settings
from django.db import connection

from inventory import services
from inventory.models import Product, Reservation
from tests.support.factories import ProductFactory, StockLevelFactory


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_a_query_run_three_times_is_prepared_on_the_server():
    assert settings.DATABASE_PREPARED_STATEMENTS is True
    ProductFactory.create_batch(2)
    for runs in range(1, 4):
        assert Product.objects.filter(price__gte=0).count() == 2
        prepared = [s for s in _prepared() if '"inventory_product"' in s and "COUNT" in s]
        # psycopg's prepare_threshold 2: sent as is twice, prepared at the third run.
        assert len(prepared) == (1 if runs == 3 else 0), runs


@pytest.mark.django_db
def test_the_reservation_statements_run_prepared():
    """The hot path's hand-written statements (array parameters as text, casts in the
    SQL) bind and run prepared like the ORM's."""
    level = StockLevelFactory(on_hand=10)
    line = services.ReservationLine(
        product_id=level.product_id, warehouse_id=level.warehouse_id, quantity=1
    )
    for _ in range(4):
        [reservation] = services.reserve(lines=[line], ttl_seconds=60, actor="test")
        services.release(reservation_ids=[reservation.id], reason="api", actor="test")
    prepared = _prepared()
    assert any("FOR UPDATE OF s" in s for s in prepared)
    assert any("INSERT INTO inventory_reservationevent" in s for s in prepared)
    level.refresh_from_db()
    assert level.reserved == 0
    assert Reservation.objects.filter(status="released").count() == 4
