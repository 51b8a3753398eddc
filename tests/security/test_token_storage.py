"""A cart token is a bearer secret: it is handed out once and only its SHA-256 is kept.
After a whole checkout with it, the token string appears in no column of any table."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from psycopg import sql

from carts.models import Cart
from tests.support import ADDRESS
from tests.support.factories import StockLevelFactory

pytestmark = pytest.mark.django_db

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea")


def _columns_holding(needle: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_name, column_name, data_type FROM information_schema.columns
             WHERE table_schema = 'public' AND data_type = ANY(%s)
            """,
            [list(TEXT_TYPES)],
        )
        columns = cursor.fetchall()
        hits = []
        for table, column, data_type in columns:
            expr = (
                sql.SQL("encode({}, 'escape')") if data_type == "bytea" else sql.SQL("{}::text")
            ).format(sql.Identifier(column))
            query = sql.SQL("SELECT 1 FROM {} WHERE position(%s in {}) > 0 LIMIT 1").format(
                sql.Identifier(table), expr
            )
            cursor.execute(query.as_string(cursor.connection), [needle])
            if cursor.fetchone():
                hits.append(f"{table}.{column}")
    assert columns, "found no text columns: the scan itself is broken"
    return hits


def test_cart_token_is_stored_only_as_its_hash(api_client):
    stock = StockLevelFactory(on_hand=5)
    created = api_client.post("/api/v1/carts/", {}, format="json")
    assert created.status_code == 201
    token = created.json()["token"]
    cart_id = created.json()["id"]
    api_client.credentials(HTTP_X_CART_TOKEN=token)
    base = f"/api/v1/carts/{cart_id}"
    assert (
        api_client.post(
            f"{base}/items/", {"sku": stock.product.sku, "quantity": 1}, format="json"
        ).status_code
        == 201
    )
    assert api_client.post(f"{base}/checkout/", {}, format="json").status_code == 201
    patched = api_client.patch(
        f"{base}/checkout/",
        {"shipping_address": ADDRESS, "payment_method": "card"},
        format="json",
    )
    assert patched.status_code == 200
    confirmed = api_client.post(
        f"{base}/checkout/confirm/", {}, format="json", HTTP_IDEMPOTENCY_KEY="key-1"
    )
    assert confirmed.status_code == 201, confirmed.content
    order_id = confirmed.json()["id"]
    assert api_client.get(f"/api/v1/orders/{order_id}/").status_code == 200

    assert Cart.objects.get(id=cart_id).token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert _columns_holding(token) == []
    # The scan finds what is there: the hash is found where it is kept.
    assert _columns_holding(hashlib.sha256(token.encode()).hexdigest()) == ["carts_cart.token_hash"]
