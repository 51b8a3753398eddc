"""Settings for the test suite: the real settings, with a lock timeout that turns a lock
bug into a failure instead of a hang, fast password hashing, and Redis databases of its
own so a test run never touches a running instance's queue."""

import os

from config.settings import *  # noqa: F403
from config.settings import DATABASES

DATABASES["default"]["OPTIONS"]["options"] = "-c lock_timeout=5000 -c statement_timeout=60000"
DATABASES["default"]["CONN_MAX_AGE"] = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("TEST_REDIS_CACHE_URL", "redis://127.0.0.1:6379/15"),
    }
}
PAYMENT_BREAKER_REDIS_URL = os.environ.get(
    "TEST_PAYMENT_BREAKER_REDIS_URL", CACHES["default"]["LOCATION"]
)
# One breaker per test process (xdist workers must not trip each other's breaker).
PAYMENT_BREAKER_NAMESPACE = f"test-payments-gateway-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
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
