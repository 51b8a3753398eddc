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

from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from carts.tokens import hash_token, new_token
from tests.fuzz.fuzzing import CONFIG, error_envelope, keep_the_test_connection
from tests.support.factories import CartFactory, CartItemFactory, StaffFactory, StockLevelFactory

__all__ = ("keep_the_test_connection",)  # autouse: in use by being in this module

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG)

pytestmark = pytest.mark.django_db

# The fixtures below are made once per operation and shared by its examples on purpose:
# the examples act on one cart, one staff user, as a client session would.
shared_fixtures = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


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
