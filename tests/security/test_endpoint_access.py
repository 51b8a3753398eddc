"""Who may call what, for every operation the URL resolver serves (see ``endpoints``).

* staff-only operations answer 401 ``NOT_AUTHENTICATED`` to anonymous callers and 403
  ``PERMISSION_DENIED`` to signed-in customers;
* operations of one cart answer 404 ``CART_NOT_FOUND`` without its token, with another
  cart's token, and to a signed-in customer who does not own it — and do not answer that
  to its own token;
* operations of one order do the same with 404 ``ORDER_NOT_FOUND``.
"""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from carts.tokens import hash_token, new_token
from tests.security.endpoints import api_operations
from tests.support.factories import (
    CartFactory,
    CartItemFactory,
    OrderFactory,
    StockLevelFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

OPERATIONS = api_operations()
STAFF_OPS = [op for op in OPERATIONS if op.kind == "staff"]
CART_OPS = [op for op in OPERATIONS if op.kind == "cart"]
ORDER_OPS = [op for op in OPERATIONS if op.kind == "order"]

# A body that is valid for the operation, so that a refusal cannot come from validation.
VALID_BODIES = {
    ("POST", "carts/{}/items/"): lambda w: {"sku": w["sku"], "quantity": 1},
    ("PATCH", "carts/{}/items/{}/"): lambda w: {"quantity": 2},
    ("PATCH", "carts/{}/checkout/"): lambda w: {"current_step": 2},
    ("POST", "carts/{}/waitlist/"): lambda w: {"sku": w["sku"], "quantity": 1},
}


def _assert_envelope(response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)


def _call(client: APIClient, op, path: str, body: dict | None = None, **headers):
    return getattr(client, op.method.lower())(path, body or {}, format="json", **headers)


def _token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_the_api_has_operations_of_every_kind():
    """Guards the derivation itself: an empty or mis-read URL list must fail loudly."""
    assert STAFF_OPS, "no staff-only operation found"
    assert CART_OPS, "no cart operation found"
    assert {op.kind for op in OPERATIONS} >= {"public", "staff", "cart"}


def test_every_served_operation_is_in_the_openapi_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    served = {(op.method, op.openapi_path) for op in OPERATIONS}
    assert served - documented == set(), "served but missing from /api/schema/"
    assert documented - served == set(), "documented but not served"


@pytest.mark.parametrize("op", STAFF_OPS, ids=str)
def test_staff_operation_refuses_anonymous_callers(op):
    response = _call(APIClient(), op, op.path())
    _assert_envelope(response, 401, "NOT_AUTHENTICATED")


@pytest.mark.parametrize("op", STAFF_OPS, ids=str)
def test_staff_operation_refuses_customers(op):
    response = _call(_token_client(UserFactory()), op, op.path())
    _assert_envelope(response, 403, "PERMISSION_DENIED")


@pytest.mark.parametrize("op", STAFF_OPS, ids=str)
def test_staff_operation_refuses_a_session_of_a_customer(op):
    session_client = APIClient(enforce_csrf_checks=False)
    session_client.force_login(UserFactory())
    response = _call(session_client, op, op.path())
    _assert_envelope(response, 403, "PERMISSION_DENIED")


@pytest.fixture
def carts():
    """Cart A (the victim, with one line) and cart B (the other shopper), anonymous."""
    stock = StockLevelFactory(on_hand=50)
    token_a, token_b = new_token(), new_token()
    cart_a = CartFactory(token_hash=hash_token(token_a))
    item = CartItemFactory(cart=cart_a, product=stock.product, warehouse=stock.warehouse)
    cart_b = CartFactory(token_hash=hash_token(token_b))
    CartItemFactory(cart=cart_b, product=stock.product, warehouse=stock.warehouse)
    return {
        "cart_a": cart_a,
        "item_a": item,
        "token_a": token_a,
        "token_b": token_b,
        "sku": stock.product.sku,
    }


def _cart_path(op, w) -> str:
    return op.path(w["cart_a"].id, w["item_a"].id)


def _cart_body(op, w) -> dict:
    make = VALID_BODIES.get((op.method, op.shape))
    return make(w) if make else {}


@pytest.mark.parametrize("op", CART_OPS, ids=str)
@pytest.mark.parametrize("who", ["no token", "other cart's token", "signed-in stranger"])
def test_cart_operation_answers_cart_not_found_to_anyone_but_its_holder(op, who, carts):
    client = APIClient()
    headers = {}
    if who == "other cart's token":
        headers["HTTP_X_CART_TOKEN"] = carts["token_b"]
    elif who == "signed-in stranger":
        client = _token_client(UserFactory())
    response = _call(client, op, _cart_path(op, carts), _cart_body(op, carts), **headers)
    _assert_envelope(response, 404, "CART_NOT_FOUND")


@pytest.mark.parametrize("op", [op for op in CART_OPS if op.method != "GET"], ids=str)
@pytest.mark.parametrize(
    "body",
    ['{"quantity": ', '{"sku": "", "quantity": -1, "current_step": 99}'],
    ids=["malformed JSON", "invalid fields"],
)
def test_a_bad_body_does_not_get_past_the_cart_check(op, body, carts):
    """Access is decided before the body is looked at: a stranger's bad request learns
    nothing from validation errors."""
    response = getattr(APIClient(), op.method.lower())(
        _cart_path(op, carts),
        body,
        content_type="application/json",
        HTTP_X_CART_TOKEN=carts["token_b"],
    )
    _assert_envelope(response, 404, "CART_NOT_FOUND")


# What the holder of cart A (its token, or its signed-in owner) gets from each operation
# with the body above, the cart being active with one line: the answer of the operation
# itself (an error code when the cart's status refuses it), never an access refusal.
HOLDER_ANSWERS = {
    ("GET", "carts/{}/"): (200, None),
    ("POST", "carts/{}/items/"): (201, None),
    ("PATCH", "carts/{}/items/{}/"): (200, None),
    ("DELETE", "carts/{}/items/{}/"): (200, None),
    ("GET", "carts/{}/validate-stock/"): (200, None),
    ("POST", "carts/{}/checkout/"): (201, None),
    ("GET", "carts/{}/checkout/"): (409, "INVALID_CART_STATUS"),
    ("PATCH", "carts/{}/checkout/"): (409, "INVALID_CART_STATUS"),
    ("DELETE", "carts/{}/checkout/"): (409, "INVALID_CART_STATUS"),
    ("POST", "carts/{}/checkout/confirm/"): (409, "INVALID_CART_STATUS"),
    ("GET", "carts/{}/waitlist/"): (200, None),
    # The cart's product is in stock: add it to the cart instead.
    ("POST", "carts/{}/waitlist/"): (409, "STOCK_AVAILABLE"),
    # The second path id is the cart line's: no waitlist entry has it.
    ("DELETE", "carts/{}/waitlist/{}/"): (404, "WAITLIST_ENTRY_NOT_FOUND"),
}


def _assert_holder_answer(op, response) -> None:
    status, code = HOLDER_ANSWERS[(op.method, op.shape)]
    if code is None:
        assert response.status_code == status, (response.status_code, response.content[:300])
    else:
        _assert_envelope(response, status, code)


def test_every_cart_operation_has_its_holder_answer():
    assert {(op.method, op.shape) for op in CART_OPS} == set(HOLDER_ANSWERS)


@pytest.mark.parametrize("op", CART_OPS, ids=str)
def test_cart_operation_is_open_to_its_own_token(op, carts):
    """The control of the test above: the refusal is about the token, not the request."""
    response = _call(
        APIClient(),
        op,
        _cart_path(op, carts),
        _cart_body(op, carts),
        HTTP_X_CART_TOKEN=carts["token_a"],
    )
    _assert_holder_answer(op, response)


@pytest.mark.parametrize("op", CART_OPS, ids=str)
def test_cart_operation_is_open_to_the_signed_in_owner(op, carts):
    owner = UserFactory()
    cart = carts["cart_a"]
    cart.customer = owner
    cart.save(update_fields=["customer"])
    response = _call(_token_client(owner), op, _cart_path(op, carts), _cart_body(op, carts))
    _assert_holder_answer(op, response)


@pytest.fixture
def orders():
    token_a, token_b = new_token(), new_token()
    order = OrderFactory(cart=CartFactory(token_hash=hash_token(token_a), status="completed"))
    CartFactory(token_hash=hash_token(token_b))
    return {"order": order, "token_a": token_a, "token_b": token_b}


@pytest.mark.parametrize("op", ORDER_OPS, ids=str)
@pytest.mark.parametrize("who", ["no token", "other cart's token", "signed-in stranger"])
def test_order_operation_answers_order_not_found_to_anyone_but_its_cart(op, who, orders):
    client = APIClient()
    headers = {}
    if who == "other cart's token":
        headers["HTTP_X_CART_TOKEN"] = orders["token_b"]
    elif who == "signed-in stranger":
        client = _token_client(UserFactory())
    response = _call(client, op, op.path(orders["order"].id), **headers)
    _assert_envelope(response, 404, "ORDER_NOT_FOUND")


@pytest.mark.parametrize("op", ORDER_OPS, ids=str)
def test_order_operation_is_open_to_its_cart_token(op, orders):
    response = _call(
        APIClient(),
        op,
        op.path(orders["order"].id),
        HTTP_X_CART_TOKEN=orders["token_a"],
    )
    assert response.status_code in (200, 409), response.content[:300]
