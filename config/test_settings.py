"""Settings for the test suite: the real settings, with a lock timeout that turns a lock
bug into a failure instead of a hang, fast password hashing, and Redis databases of its
own so a test run never touches a running instance's queue.

Under pytest-xdist every worker process has its own test database (pytest-django adds
``_gw0``, ``_gw1``, … to its name) and its own two Redis databases: worker ``gwN`` uses
the numbers of ``TEST_CELERY_BROKER_URL`` and ``TEST_REDIS_CACHE_URL`` (14 and 15 by
default) minus ``2 * N``, so ``-n 2`` uses 14/15 and 12/13. The broker tests empty their
database, the throttles and the payment breaker keep state in the cache's: two workers
sharing one would fail each other's tests. Processes a test starts with these settings
inherit ``PYTEST_XDIST_WORKER`` and so use the databases of that worker."""

import os
import re
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

from config.settings import *  # noqa: F403
from config.settings import DATABASE_POOL_MODE, DATABASES

# "gw0", "gw1", … in an xdist worker (and in the processes it starts); empty otherwise.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def worker_redis_url(name: str, default: str, worker: str = XDIST_WORKER) -> str:
    """The Redis URL of environment variable ``name`` (``default`` if unset), its
    database number lowered by two per xdist worker index, so that no two workers of
    one run share a database (each worker has two: the broker's and the cache's)."""
    url = os.environ.get(name, default)
    index = re.fullmatch(r"gw(\d+)", worker)
    if index is None:
        return url
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if not path.isdigit():
        raise ImproperlyConfigured(f"{name} must end in a Redis database number, got {url!r}")
    db = int(path) - 2 * int(index[1])
    shifted = urlunsplit(parts._replace(path=f"/{db}"))
    # Never 0 or 1: the broker and cache of the instance `make run` starts (its queue).
    if db < 2:
        raise ImproperlyConfigured(
            f"{name}: xdist worker {worker} would use Redis database {db}; raise the "
            "database numbers of TEST_CELERY_BROKER_URL and TEST_REDIS_CACHE_URL or run "
            "fewer workers"
        )
    return shifted


if DATABASE_POOL_MODE == "session":  # behind a transaction pooler, its connect_query sets them
    DATABASES["default"]["OPTIONS"]["options"] = "-c lock_timeout=5000 -c statement_timeout=60000"
DATABASES["default"]["CONN_MAX_AGE"] = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_BROKER_URL = worker_redis_url("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": worker_redis_url("TEST_REDIS_CACHE_URL", "redis://127.0.0.1:6379/15"),
    }
}
PAYMENT_BREAKER_REDIS_URL = os.environ.get(
    "TEST_PAYMENT_BREAKER_REDIS_URL", CACHES["default"]["LOCATION"]
)
# One breaker per test process (xdist workers must not trip each other's breaker, also
# when TEST_PAYMENT_BREAKER_REDIS_URL points them at one Redis database).
PAYMENT_BREAKER_NAMESPACE = f"test-payments-gateway-{XDIST_WORKER or 'main'}"
# Tests of other behaviour make many failing gateway calls; the breaker's own tests set
# the threshold they need.
PAYMENT_BREAKER_FAILURES = 1000
PAYMENT_RETRY_BASE_SECONDS = 0.01
# Every test client comes from 127.0.0.1: the fuzz tests alone send the order lookup more
# than its production rate. The tests of the throttle set the rate they check.
ORDER_LOOKUP_THROTTLE = "100000/min"
PAYMENT_TIMEOUT_SECONDS = 0.05
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
