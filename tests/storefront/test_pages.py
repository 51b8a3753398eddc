"""The storefront pages as Django serves them: plain templates that hand the scripts what
they need (API root, poll interval, choices) and nothing else."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]

PAGES = [
    ("storefront:products", {}, "storefront/products.js"),
    ("storefront:cart", {}, "storefront/cart.js"),
    ("storefront:checkout", {}, "storefront/checkout.js"),
    ("storefront:order", {"order_id": uuid.uuid4()}, "storefront/order.js"),
    ("storefront:order-lookup", {}, "storefront/order_lookup.js"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "kwargs", "script"), PAGES)
def test_page_renders_with_its_script_and_api_root(client, name, kwargs, script):
    response = client.get(reverse(name, kwargs=kwargs))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<script type="module" src="/static/{script}"></script>' in html
    assert 'data-api-root="/api/v1/"' in html
    assert '<html lang="en">' in html
    assert 'name="viewport"' in html
    assert "csrftoken" in response.cookies


def test_pages_live_at_the_documented_paths():
    order_id = uuid.uuid4()
    assert reverse("storefront:products") == "/"
    assert reverse("storefront:cart") == "/cart/"
    assert reverse("storefront:checkout") == "/checkout/"
    assert reverse("storefront:order", kwargs={"order_id": order_id}) == f"/orders/{order_id}/"


def test_checkout_page_polls_at_the_configured_interval(client, settings):
    settings.STOREFRONT_STOCK_POLL_SECONDS = 7
    html = client.get("/checkout/").content.decode()
    assert 'data-poll-seconds="7"' in html
    assert "every 7 seconds" in html


def _poll_setting(value: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "STOREFRONT_STOCK_POLL_SECONDS"}
    if value is not None:
        env["STOREFRONT_STOCK_POLL_SECONDS"] = value
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.STOREFRONT_STOCK_POLL_SECONDS)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("value", "expected"), [(None, "30"), ("5", "5")])
def test_poll_interval_comes_from_the_environment(value, expected):
    result = _poll_setting(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize("value", ["0", "soon"])
def test_invalid_poll_interval_stops_startup(value):
    result = _poll_setting(value)
    assert result.returncode != 0
    assert "STOREFRONT_STOCK_POLL_SECONDS must be" in result.stderr


def test_checkout_page_offers_every_test_payment_method_with_a_label(client):
    html = client.get("/checkout/").content.decode()
    for method in ("card", "test_decline", "test_capture_fail", "test_timeout"):
        assert (
            f'<input type="radio" id="payment-{method}" name="payment_method" value="{method}"'
            in html
        )
        assert f'<label for="payment-{method}">' in html


def test_every_checkout_field_has_a_label(client):
    html = client.get("/checkout/").content.decode()
    ids = re.findall(r'<(?:input|select)[^>]*\sid="([^"]+)"', html)
    assert len(ids) > 10
    for field_id in ids:
        assert f'<label for="{field_id}"' in html, field_id


def test_order_page_needs_a_uuid(client):
    assert client.get("/orders/not-a-uuid/").status_code == 404


def test_pages_only_answer_reads(client):
    assert client.post("/checkout/").status_code == 405
