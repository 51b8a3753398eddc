"""Invalid configuration stops start-up with a message naming the variable."""

import json
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
        ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8,intranet", "METRICS_ALLOWED_NETWORKS must be"),
        ("METRICS_TRUSTED_PROXIES", "10.0.0.300", "METRICS_TRUSTED_PROXIES must be"),
        ("METRICS_BEARER_TOKEN", "short", "METRICS_BEARER_TOKEN must be at least 16"),
        ("ORDER_LOOKUP_THROTTLE", "ten a minute", "ORDER_LOOKUP_THROTTLE must be a rate"),
        ("ORDER_LOOKUP_THROTTLE", "0/min", "ORDER_LOOKUP_THROTTLE must be a rate"),
        (
            "ORDER_LOOKUP_TOKEN_MAX_AGE_SECONDS",
            "10",
            "ORDER_LOOKUP_TOKEN_MAX_AGE_SECONDS must be >= 60",
        ),
        ("PAYMENT_BREAKER_FAILURES", "0", "PAYMENT_BREAKER_FAILURES must be >= 1"),
        ("PAYMENT_BREAKER_RESET_SECONDS", "soon", "PAYMENT_BREAKER_RESET_SECONDS must be a whole"),
        ("PAYMENT_BREAKER_REDIS_URL", "localhost:6379", "PAYMENT_BREAKER_REDIS_URL must be a"),
        ("PAYMENT_BREAKER_NAMESPACE", "two words", "PAYMENT_BREAKER_NAMESPACE must be"),
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


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"PAYMENT_DEADLINE_SECONDS": "28"}, "PAYMENT_DEADLINE_SECONDS (28) does not fit"),
        ({"GUNICORN_TIMEOUT": "20"}, "PAYMENT_DEADLINE_SECONDS (20) does not fit"),
        (
            {"GUNICORN_TIMEOUT": "200", "PAYMENT_DEADLINE_SECONDS": "20"},
            "PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS (120) must not be shorter than GUNICORN_TIMEOUT",
        ),
        ({"REFUND_MAX_ATTEMPTS": "0"}, "REFUND_MAX_ATTEMPTS must be >= 1"),
        ({"PAYMENT_DEADLINE_SECONDS": "soon"}, "PAYMENT_DEADLINE_SECONDS must be a whole"),
    ],
)
def test_a_payment_deadline_that_does_not_fit_the_worker_timeout_is_refused(overrides, message):
    result = run_check(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
    if "does not fit" in message:
        assert "GUNICORN_TIMEOUT" in result.stderr


def test_gunicorn_takes_its_worker_timeout_from_the_checked_settings():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    probe = "import runpy; conf = runpy.run_path('config/gunicorn.conf.py'); print(conf['timeout'])"
    fits = subprocess.run(  # noqa: S603 - fixed argument lists
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**env, "GUNICORN_TIMEOUT": "41"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert fits.stdout.strip() == "41", fits.stderr
    refused = subprocess.run(  # noqa: S603 - fixed argument lists
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**env, "GUNICORN_TIMEOUT": "21"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "PAYMENT_DEADLINE_SECONDS (20) does not fit inside GUNICORN_TIMEOUT (21)" in (
        refused.stderr
    )


def _database_settings(**overrides: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "DJANGO_SETTINGS_MODULE" and not k.startswith("DATABASE_")
    }
    probe = (
        "import json, django; django.setup(); from django.conf import settings; "
        "db = settings.DATABASES['default']; "
        "print(json.dumps({'options': db['OPTIONS'].get('options'), "
        "'server_side_cursors_off': db.get('DISABLE_SERVER_SIDE_CURSORS', False), "
        "'server_side_binding': db['OPTIONS'].get('server_side_binding'), "
        "'prepare_threshold': db['OPTIONS'].get('prepare_threshold'), "
        "'mode': settings.DATABASE_POOL_MODE}))"
    )
    done = subprocess.run(  # noqa: S603 - fixed argument lists
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**env, **overrides, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_direct_connection_sends_the_timeouts_as_startup_parameters():
    assert _database_settings(DATABASE_LOCK_TIMEOUT_MS="1234") == {
        "options": "-c lock_timeout=1234 -c statement_timeout=30000",
        "server_side_cursors_off": False,
        "server_side_binding": True,
        "prepare_threshold": 2,
        "mode": "session",
    }


def test_prepared_statements_can_be_turned_off_on_a_direct_connection():
    assert _database_settings(DATABASE_PREPARED_STATEMENTS="false") == {
        "options": "-c lock_timeout=10000 -c statement_timeout=30000",
        "server_side_cursors_off": False,
        "server_side_binding": None,
        "prepare_threshold": None,
        "mode": "session",
    }


def test_behind_a_transaction_pooler_nothing_relies_on_the_server_session():
    """No ``options`` startup parameter (PgBouncer refuses it), no server-side cursors;
    the pooled tests (tests/scaleout) check the rest against a real PgBouncer."""
    assert _database_settings(DATABASE_POOL_MODE="Transaction") == {
        "options": None,
        "server_side_cursors_off": True,
        "server_side_binding": None,
        "prepare_threshold": None,
        "mode": "transaction",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DATABASE_POOL_MODE": "statement"}, "DATABASE_POOL_MODE must be session or transaction"),
        (
            {"DATABASE_POOL_MODE": "transaction", "DATABASE_LOCK_TIMEOUT_MS": "5000"},
            "DATABASE_LOCK_TIMEOUT_MS has no effect with DATABASE_POOL_MODE=transaction",
        ),
        (
            {"DATABASE_POOL_MODE": "transaction", "DATABASE_STATEMENT_TIMEOUT_MS": "5000"},
            "DATABASE_STATEMENT_TIMEOUT_MS has no effect with DATABASE_POOL_MODE=transaction",
        ),
        (
            {
                "DATABASE_POOL_MODE": "transaction",
                "DATABASE_URL": "postgres://u@db:6432/shop?server_side_binding=true",
            },
            "DATABASE_URL must not set server_side_binding with DATABASE_POOL_MODE=transaction",
        ),
        (
            {
                "DATABASE_POOL_MODE": "transaction",
                "DATABASE_URL": "postgres://u@db:6432/shop?prepare_threshold=5",
            },
            "DATABASE_URL must not set prepare_threshold with DATABASE_POOL_MODE=transaction",
        ),
        (
            {"DATABASE_POOL_MODE": "transaction", "DATABASE_PREPARED_STATEMENTS": "true"},
            "DATABASE_PREPARED_STATEMENTS must be false with DATABASE_POOL_MODE=transaction",
        ),
    ],
)
def test_session_state_behind_a_transaction_pooler_is_refused(overrides, message):
    result = run_check(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
