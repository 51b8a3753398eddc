"""Reading metric values: from this process's registry (counters move in the test
process) or from a scraped ``/metrics`` page."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from tests.support import ADDRESS, API


def value(name: str, **labels: str) -> float:
    """A sample of the process-wide registry (0 when it was never incremented)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Moves:
    """Snapshot of several samples, to assert how much each moved."""

    def __init__(self, *samples: tuple[str, dict[str, str]]):
        self.samples = samples
        self.before = [value(name, **labels) for name, labels in samples]

    def deltas(self) -> dict[str, float]:
        out = {}
        for (name, labels), before in zip(self.samples, self.before, strict=True):
            key = name + (
                "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
                if labels
                else ""
            )
            out[key] = value(name, **labels) - before
        return out


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parses Prometheus text into ``{(sample name, sorted labels): value}``."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def sample(page: dict, name: str, **labels: str) -> float | None:
    return page.get((name, tuple(sorted(labels.items()))))


class Shopper:
    """A shopper using the API with JSON, as the storefront does."""

    def __init__(self, request_id: str | None = None):
        self.client = APIClient()
        self.headers: dict[str, str] = {}
        if request_id:
            self.headers["HTTP_X_REQUEST_ID"] = request_id
        created = self.client.post(f"{API}/carts/", {}, format="json", **self.headers)
        assert created.status_code == 201, created.content
        self.cart_id = created.json()["id"]
        self.headers["HTTP_X_CART_TOKEN"] = created.json()["token"]

    def call(self, method: str, path: str, body: object = None, **extra: str):
        kwargs = {**self.headers, **extra}
        if body is not None:
            kwargs.update(data=body, format="json")
        return getattr(self.client, method)(f"{API}/carts/{self.cart_id}/{path}", **kwargs)

    def add(self, sku: str, quantity: int = 1):
        response = self.call("post", "items/", {"sku": sku, "quantity": quantity})
        assert response.status_code == 201, response.content
        return response

    def start(self):
        return self.call("post", "checkout/", {})

    def update(self, **changes: object):
        return self.call("patch", "checkout/", changes)

    def cancel(self):
        return self.call("delete", "checkout/")

    def confirm(self):
        return self.call("post", "checkout/confirm/", {})

    def ready_to_pay(self, method: str = "card"):
        response = self.update(shipping_address=ADDRESS, payment_method=method)
        assert response.status_code == 200, response.content
        return response
