from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from inventory.models import StockLevel
from tests.support.addresses import ADDRESS
from tests.support.factories import StockLevelFactory


@dataclass
class ReadyCheckout:
    """A cart in checkout with an address and a payment method, made through the API."""

    cart_id: str
    token: str
    stock: list[StockLevel]

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_CART_TOKEN=self.token)
        return client

    @property
    def base(self) -> str:
        return f"/api/v1/carts/{self.cart_id}"

    def confirm(self, key: str = "confirm-1"):
        return self.client().post(
            f"{self.base}/checkout/confirm/", {}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )


@pytest.fixture(autouse=True)
def default_warehouse(request):
    """Transactional tests flush the database, the data migration's default warehouse
    included; put it back for every test here that uses the database."""
    if "django_db" not in {m.name for m in request.node.iter_markers()}:
        return None
    from inventory.models import Warehouse

    warehouse, _ = Warehouse.objects.get_or_create(
        code="default", defaults={"name": "Default warehouse", "is_default": True}
    )
    return warehouse


@pytest.fixture
def ready_checkout():
    def make(*, payment_method: str = "card", lines: int = 2, on_hand: int = 10) -> ReadyCheckout:
        stock = [StockLevelFactory(on_hand=on_hand) for _ in range(lines)]
        api = APIClient()
        created = api.post("/api/v1/carts/", {}, format="json")
        assert created.status_code == 201, created.content
        ready = ReadyCheckout(created.json()["id"], created.json()["token"], stock)
        client = ready.client()
        for level in stock:
            added = client.post(
                f"{ready.base}/items/", {"sku": level.product.sku, "quantity": 2}, format="json"
            )
            assert added.status_code == 201, added.content
        started = client.post(f"{ready.base}/checkout/", {}, format="json")
        assert started.status_code == 201, started.content
        updated = client.patch(
            f"{ready.base}/checkout/",
            {"shipping_address": ADDRESS, "payment_method": payment_method},
            format="json",
        )
        assert updated.status_code == 200, updated.content
        return ready

    return make
