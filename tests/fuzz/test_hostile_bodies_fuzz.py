"""Hostile JSON bodies sent to every operation of /api/schema/ that takes a JSON body.

The shapes of ``tests.support.hostile`` (a megabyte of ``[``, deep nesting, huge and
non-finite numbers, ``NaN``, invalid UTF-8, unpaired surrogates, NUL, duplicate keys, an
oversized body) go through schemathesis's in-process WSGI transport with the operation's
path filled with real resources (a shopper's cart and line, a pending reservation, an
order, a product, a warehouse) and both a staff token and the cart token, so the view
reaches the body. The operation list is read from the schema: a new JSON-body operation
is covered without editing this file.

Each answer must be 400 ``VALIDATION_ERROR`` in the envelope, with ``details.fields.body``,
and the operation must document 400. A path parameter this file has no resource for
(a new kind of id) may answer its documented 404 instead, never a 5xx.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from rest_framework.authtoken.models import Token

from carts.tokens import hash_token, new_token
from inventory import services
from inventory.services import ReservationLine
from tests.fuzz.fuzzing import CONFIG, error_envelope, keep_the_test_connection
from tests.support.factories import (
    CartFactory,
    CartItemFactory,
    OrderFactory,
    StaffFactory,
    StockLevelFactory,
)
from tests.support.hostile import HOSTILE_BODIES

__all__ = ("keep_the_test_connection",)  # autouse: in use by being in this module

pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG)


def _json_body_operations() -> list[Any]:
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        content = operation.definition.raw.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            operations.append(operation)
    return operations


OPERATIONS = _json_body_operations()


@pytest.fixture
def resources() -> dict[str, Any]:
    stock = StockLevelFactory(on_hand=100)
    token = new_token()
    cart = CartFactory(token_hash=hash_token(token))
    item = CartItemFactory(cart=cart, product=stock.product, warehouse=stock.warehouse)
    [reservation] = services.reserve(
        lines=[
            ReservationLine(
                product_id=stock.product_id, warehouse_id=stock.warehouse_id, quantity=1
            )
        ],
        ttl_seconds=600,
    )
    staff, _ = Token.objects.get_or_create(user=StaffFactory())
    return {
        "path": {
            "cart_id": str(cart.id),
            "item_id": item.id,
            "reservation_id": reservation.id,
            "order_id": str(OrderFactory().id),
            "product_id": str(stock.product_id),
            "id": str(stock.product_id),
            "code": stock.warehouse.code,
        },
        "headers": {"Authorization": f"Token {staff.key}", "X-Cart-Token": token},
    }


def test_the_schema_has_json_body_operations():
    labels = {operation.label for operation in OPERATIONS}
    assert "POST /api/v1/carts/{cart_id}/items/" in labels
    assert "POST /api/v1/inventory/reservations/{reservation_id}/release/" in labels
    assert len(labels) >= 10


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
@pytest.mark.parametrize("name", HOSTILE_BODIES.keys())
def test_hostile_body_is_a_validation_error(operation, name, resources):
    assert "400" in operation.definition.raw["responses"], f"{operation.label} documents no 400"
    params = [
        p["name"] for p in operation.definition.raw.get("parameters", []) if p["in"] == "path"
    ]
    params += [p["name"] for p in _path_item_parameters(operation)]
    known = all(param in resources["path"] for param in params)
    path_parameters = {param: resources["path"].get(param, "0") for param in params}
    case = schema.make_case(
        operation=operation,
        path_parameters=path_parameters,
        body={},
        media_type="application/json",
    )

    response = case.call(headers=resources["headers"], data=HOSTILE_BODIES[name])

    assert response.status_code < 500, (response.status_code, response.text[:300])
    error_envelope(None, response, case)
    if known or response.status_code != 404:
        assert response.status_code == 400, (response.status_code, response.text[:300])
        error = response.json()["error"]
        assert error["code"] == "VALIDATION_ERROR", error
        assert list(error["details"]["fields"]) == ["body"], error


def _path_item_parameters(operation: Any) -> list[dict[str, Any]]:
    item = operation.schema.raw_schema["paths"][operation.path]
    own = {p["name"] for p in operation.definition.raw.get("parameters", [])}
    return [p for p in item.get("parameters", []) if p["in"] == "path" and p["name"] not in own]
