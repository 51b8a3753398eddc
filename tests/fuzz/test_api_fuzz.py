"""Property-based fuzzing of every operation in /api/schema/ with schemathesis.

Requests go in-process to the WSGI application (no server), against the test database.
Each operation is fuzzed twice: with a staff token (ids as generated, so mostly unknown
or malformed ones) and as a shopper holding a real cart's token (the cart id, and a
line of it, put into the path). Whatever the input:

* no answer is a 5xx;
* every status code, content type, header and body is the one the schema documents;
* every non-2xx answer is the error envelope ``{"error": {"code", "message", "details"}}``.

The number of examples is bounded (``FUZZ_MAX_EXAMPLES``, default 12 per operation and
identity) and the seed fixed, so a run is repeatable and takes well under a minute.
``FUZZ_COVERAGE=1`` adds schemathesis's coverage phase (boundary and missing values of
every parameter and body field), for a deeper run of about twice the time.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from carts.tokens import hash_token, new_token
from tests.support.factories import CartFactory, CartItemFactory, StaffFactory, StockLevelFactory

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "12"))
# The coverage phase (boundary values of every parameter) doubles the run time.
COVERAGE = os.environ.get("FUZZ_COVERAGE", "") not in ("", "0")

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261124,
        "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "database": "none"},
        "phases": {"coverage": {"enabled": COVERAGE}, "stateful": {"enabled": False}},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
        },
    }
)

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG)

pytestmark = pytest.mark.django_db

# The fixtures below are made once per operation and shared by its examples on purpose:
# the examples act on one cart, one staff user, as a client session would.
shared_fixtures = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def error_envelope(ctx: Any, response: Any, case: Any) -> None:
    """Every non-2xx answer is the one error envelope of API.md."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/json"), f"error as {content_type!r}"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the envelope: {body!r}"
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, f"envelope keys: {sorted(error)}"
    assert isinstance(error["code"], str) and error["code"].isupper(), error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], dict), error


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Like Django's test client: the WSGI handler must not close the test's database
    connection at the end of each request (it is inside the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def staff_token() -> str:
    token, _ = Token.objects.get_or_create(user=StaffFactory())
    return token.key


@pytest.fixture
def shopper_cart() -> dict[str, Any]:
    stock = StockLevelFactory(on_hand=100)
    token = new_token()
    cart = CartFactory(token_hash=hash_token(token))
    item = CartItemFactory(cart=cart, product=stock.product, warehouse=stock.warehouse)
    return {"cart_id": str(cart.id), "item_id": item.id, "token": token}


@schema.parametrize()
@shared_fixtures
def test_api_as_staff(case, staff_token):
    case.call_and_validate(
        headers={"Authorization": f"Token {staff_token}"}, additional_checks=[error_envelope]
    )


@schema.parametrize()
@shared_fixtures
def test_api_as_shopper(case, shopper_cart):
    path = case.path_parameters or {}
    if "cart_id" in path:
        path["cart_id"] = shopper_cart["cart_id"]
    if "item_id" in path:
        path["item_id"] = shopper_cart["item_id"]
    case.call_and_validate(
        headers={"X-Cart-Token": shopper_cart["token"]}, additional_checks=[error_envelope]
    )
