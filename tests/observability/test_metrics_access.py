"""Who may scrape ``GET /metrics``: ``METRICS_ALLOWED_NETWORKS`` (loopback by default),
``METRICS_BEARER_TOKEN``, and ``X-Forwarded-For`` believed only from
``METRICS_TRUSTED_PROXIES``. A refused scrape is a short text 403 or 401, never Django's
HTML page, and never the metrics."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from config import settings as project_settings

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token-0123"


def scrape(remote: str, **headers: str):
    return Client(REMOTE_ADDR=remote).get("/metrics", headers=headers)


def assert_metrics(response) -> None:
    assert response.status_code == 200, response.content[:200]
    assert b"stock_reservations_total" in response.content


def assert_refused(response, status: int) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/plain")
    assert b"<html" not in response.content.lower()
    assert b"stock_reservations_total" not in response.content


@pytest.mark.parametrize("remote", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_allowed_by_default(remote):
    assert_metrics(scrape(remote))


@pytest.mark.parametrize("remote", ["10.1.2.3", "203.0.113.7", "2001:db8::1", "garbage", ""])
def test_other_clients_are_refused_by_default(remote):
    assert_refused(scrape(remote), 403)


def test_listed_network_is_allowed_and_others_refused(settings):
    settings.METRICS_ALLOWED_NETWORKS = ("10.0.0.0/8", "2001:db8::/32")
    assert_metrics(scrape("10.200.0.5"))
    assert_metrics(scrape("2001:db8::42"))
    assert_refused(scrape("192.168.1.5"), 403)
    assert_refused(scrape("127.0.0.1"), 403)  # the list replaces loopback


def test_token_right_wrong_and_missing(settings):
    settings.METRICS_BEARER_TOKEN = TOKEN
    assert_metrics(scrape("127.0.0.1", Authorization=f"Bearer {TOKEN}"))
    assert_metrics(scrape("127.0.0.1", Authorization=f"bearer {TOKEN}"))
    missing = scrape("127.0.0.1")
    assert_refused(missing, 401)
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert_refused(scrape("127.0.0.1", Authorization="Bearer wrong-token-0000000000"), 401)
    assert_refused(scrape("127.0.0.1", Authorization=f"Basic {TOKEN}"), 401)
    assert_refused(scrape("127.0.0.1", Authorization=f"Bearer {TOKEN}x"), 401)


def test_token_does_not_open_a_network_that_is_not_listed(settings):
    settings.METRICS_BEARER_TOKEN = TOKEN
    assert_refused(scrape("203.0.113.7", Authorization=f"Bearer {TOKEN}"), 403)
    settings.METRICS_ALLOWED_NETWORKS = ("0.0.0.0/0", "::/0")
    assert_metrics(scrape("203.0.113.7", Authorization=f"Bearer {TOKEN}"))
    assert_refused(scrape("203.0.113.7"), 401)


def test_forwarded_for_is_ignored_without_trusted_proxies():
    # A public client pretending to be loopback, and a local proxy forwarding one.
    assert_refused(scrape("203.0.113.7", **{"X-Forwarded-For": "127.0.0.1"}), 403)
    assert_metrics(scrape("127.0.0.1", **{"X-Forwarded-For": "203.0.113.7"}))


def test_forwarded_for_from_a_trusted_proxy_names_the_client(settings):
    settings.METRICS_TRUSTED_PROXIES = ("127.0.0.1/32", "10.0.0.0/24")
    settings.METRICS_ALLOWED_NETWORKS = ("192.168.0.0/16",)
    # The proxy's connection, the client behind it.
    assert_metrics(scrape("127.0.0.1", **{"X-Forwarded-For": "192.168.4.4"}))
    assert_refused(scrape("127.0.0.1", **{"X-Forwarded-For": "203.0.113.7"}), 403)
    # Two trusted hops: the right-most untrusted entry is the client; what the client
    # wrote further left proves nothing.
    chain = "192.168.9.9, 203.0.113.7, 10.0.0.5"
    assert_refused(scrape("127.0.0.1", **{"X-Forwarded-For": chain}), 403)
    chain = "203.0.113.7, 192.168.9.9, 10.0.0.5"
    assert_metrics(scrape("127.0.0.1", **{"X-Forwarded-For": chain}))
    # An untrusted connection's header is ignored; a garbled entry is refused.
    assert_refused(scrape("203.0.113.8", **{"X-Forwarded-For": "192.168.1.1"}), 403)
    assert_refused(scrape("127.0.0.1", **{"X-Forwarded-For": "not-an-ip"}), 403)


def test_invalid_networks_stop_start_up(monkeypatch):
    monkeypatch.setenv("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8, nonsense")
    with pytest.raises(ImproperlyConfigured, match="METRICS_ALLOWED_NETWORKS"):
        project_settings._networks("METRICS_ALLOWED_NETWORKS", "")
    monkeypatch.setenv("METRICS_ALLOWED_NETWORKS", " 10.1.2.3 , ::1 ,")
    assert project_settings._networks("METRICS_ALLOWED_NETWORKS", "") == ("10.1.2.3/32", "::1/128")
