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
PAYMENT_RETRY_BASE_SECONDS = 0.01
PAYMENT_TIMEOUT_SECONDS = 0.05
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
