"""Invalid configuration stops start-up with a message naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(**overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults_start():
    assert run_check().returncode == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CHECKOUT_RESERVATION_TTL_SECONDS", "-5", "CHECKOUT_RESERVATION_TTL_SECONDS must be >= 1"),
        ("CHECKOUT_MAX_EXTENSIONS", "three", "CHECKOUT_MAX_EXTENSIONS must be a whole number"),
        ("ENABLE_PRE_RESERVATION", "maybe", "ENABLE_PRE_RESERVATION must be true or false"),
        ("LOW_STOCK_THRESHOLD", "-1", "LOW_STOCK_THRESHOLD must be >= 0"),
        ("CHECKOUT_PAYMENT_TTL_SECONDS", "999999", "exceeds RESERVATION_MAX_TTL_SECONDS"),
        ("DATABASE_URL", "mysql://root@localhost/x", "DATABASE_URL must point to PostgreSQL"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be json or text"),
    ],
)
def test_invalid_value_stops_startup(name, value, message):
    result = run_check(**{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_min_ttl_above_max_is_refused():
    result = run_check(
        RESERVATION_MIN_TTL_SECONDS="600",
        RESERVATION_MAX_TTL_SECONDS="300",
        CHECKOUT_RESERVATION_TTL_SECONDS="60",
        CHECKOUT_EXTENSION_TTL_SECONDS="60",
        CHECKOUT_PAYMENT_TTL_SECONDS="60",
    )
    assert result.returncode != 0
    assert "RESERVATION_MIN_TTL_SECONDS must not exceed" in result.stderr
