"""A shopper as an API client sees it: creates a cart, keeps its token, calls the cart
and checkout endpoints with JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.support.stock import stocked

API = "/api/v1"


class Shopper:
    def __init__(self, client: APIClient | None = None):
        self.client = client or APIClient()
        self.cart_id: str | None = None
        self.token: str | None = None

    # --- plumbing ----------------------------------------------------------------
    def _headers(self, token: str | None) -> dict[str, str]:
        token = self.token if token is None else token
        return {"HTTP_X_CART_TOKEN": token} if token else {}

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None):
        kwargs: dict[str, Any] = self._headers(token)
        if body is not None:
            kwargs.update(data=body, format="json")
        return getattr(self.client, method)(f"{API}/{path}", **kwargs)

    # --- carts ---------------------------------------------------------------------
    def create_cart(self, **body: Any) -> dict[str, Any]:
        response = self.client.post(f"{API}/carts/", body, format="json")
        assert response.status_code == 201, response.content
        data = response.json()
        self.cart_id, self.token = data["id"], data["token"]
        return data

    def cart(self, **kw: Any):
        return self.call("get", f"carts/{self.cart_id}/", **kw)

    def add(self, sku: str, quantity: int = 1, **extra: Any):
        token = extra.pop("token", None)
        body = {"sku": sku, "quantity": quantity, **extra}
        return self.call("post", f"carts/{self.cart_id}/items/", body, token=token)

    def set_quantity(self, item_id: int, quantity: int, **kw: Any):
        return self.call(
            "patch", f"carts/{self.cart_id}/items/{item_id}/", {"quantity": quantity}, **kw
        )

    def remove(self, item_id: int, **kw: Any):
        return self.call("delete", f"carts/{self.cart_id}/items/{item_id}/", **kw)

    def validate_stock(self, **kw: Any):
        return self.call("get", f"carts/{self.cart_id}/validate-stock/", **kw)

    # --- checkout ------------------------------------------------------------------
    def start(self, **kw: Any):
        return self.call("post", f"carts/{self.cart_id}/checkout/", {}, **kw)

    def state(self, **kw: Any):
        return self.call("get", f"carts/{self.cart_id}/checkout/", **kw)

    def update(self, body: dict[str, Any], **kw: Any):
        return self.call("patch", f"carts/{self.cart_id}/checkout/", body, **kw)

    def cancel(self, **kw: Any):
        return self.call("delete", f"carts/{self.cart_id}/checkout/", **kw)

    # --- shortcuts -----------------------------------------------------------------
    def cart_with(self, *lines: tuple[str, int]) -> dict[str, Any]:
        """Creates a cart holding ``(sku, quantity)`` lines; returns the cart body."""
        self.create_cart()
        body: dict[str, Any] = {}
        for sku, quantity in lines:
            response = self.add(sku, quantity)
            assert response.status_code == 201, response.content
            body = response.json()
        return body


def assert_constant_queries(
    django_assert_num_queries,
    one_line: Callable[[], Any],
    ten_lines: Callable[[], Any],
    *,
    at_most: int,
) -> tuple[Any, Any]:
    """Runs the same request for a 1-line and a 10-line cart and asserts that the second
    performs exactly as many queries as the first (and the first no more than
    ``at_most``). Returns both responses."""
    with CaptureQueriesContext(connection) as first:
        small = one_line()
    count = len(first.captured_queries)
    assert count <= at_most, f"{count} queries for one line (at most {at_most} expected)"
    with django_assert_num_queries(count):
        large = ten_lines()
    return small, large


def shoppers_with_1_and_10_lines(
    *, on_hand: int = 50, quantity: int = 2
) -> tuple[Shopper, Shopper]:
    one, ten = Shopper(), Shopper()
    one.cart_with((stocked(on_hand=on_hand).product.sku, quantity))
    ten.cart_with(*[(stocked(on_hand=on_hand).product.sku, quantity) for _ in range(10)])
    return one, ten
