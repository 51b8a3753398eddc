"""Settings, read from the environment in this one place.

Every value has a default that works on a developer machine with PostgreSQL and Redis
on localhost. Invalid values stop start-up with an ``ImproperlyConfigured`` naming the
variable, so a typo in production never runs with a silently different behaviour.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _read(name: str, cast, default):
    try:
        return env(name, cast=cast, default=default)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from exc


def _int(name: str, default: int, *, minimum: int = 0) -> int:
    """An integer setting; anything that is not a whole number >= minimum stops start-up."""
    raw = env.str(name, default=str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="true" if default else "false").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


# --- Core -------------------------------------------------------------------------
DEBUG = _bool("DEBUG", False)
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-development-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django_prometheus",
    # Django's admin with the shop's overview as its index (ops.admin_site).
    "ops.admin_site.ShopAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc assets served by the project, no CDN
    "django_celery_beat",
    "import_export",
    # The project's apps, bottom layer first (see README "Architecture").
    "core",
    "inventory",
    "payments",
    "carts",
    "orders",
    "checkout",
    "ops",
    "storefront",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.middleware.RequestIdMiddleware",
    # Outside the others, so that their answers too (e.g. a disallowed Host) are the envelope.
    "core.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/checkout")
try:
    _db = environ.Env.db_url_config(DATABASE_URL)
except Exception as exc:  # django-environ raises several types for a malformed URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if _db.get("ENGINE") != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point to PostgreSQL (postgres://...)")
DATABASE_LOCK_TIMEOUT_MS = _int("DATABASE_LOCK_TIMEOUT_MS", 10_000, minimum=0)
DATABASE_STATEMENT_TIMEOUT_MS = _int("DATABASE_STATEMENT_TIMEOUT_MS", 30_000, minimum=0)
# How DATABASE_URL reaches PostgreSQL (docs/deployment.md "PgBouncer"): ``session`` — a
# direct connection or a session-pooling proxy, one server session per connection;
# ``transaction`` — a transaction-pooling proxy (PgBouncer ``pool_mode = transaction``),
# where consecutive transactions of one connection may run in different server sessions,
# so nothing may rely on session state.
DATABASE_POOL_MODE = env.str("DATABASE_POOL_MODE", default="session").strip().lower()
if DATABASE_POOL_MODE not in {"session", "transaction"}:
    raise ImproperlyConfigured(
        f"DATABASE_POOL_MODE must be session or transaction, got {DATABASE_POOL_MODE!r}"
    )
_db["ENGINE"] = "django_prometheus.db.backends.postgresql"
_db["CONN_MAX_AGE"] = _int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
_db["CONN_HEALTH_CHECKS"] = True
_db.setdefault("OPTIONS", {})
_db["OPTIONS"].setdefault("connect_timeout", 5)
# Parameters bound server-side, and each statement prepared on a connection the third
# time it runs there (psycopg's ``prepare_threshold``): PostgreSQL then skips parsing and
# planning the hot statements (docs/performance.md, "Prepared statements"). A prepared
# statement lives in one server session: session mode only.
DATABASE_PREPARED_STATEMENTS = _bool(
    "DATABASE_PREPARED_STATEMENTS", DATABASE_POOL_MODE == "session"
)
if DATABASE_PREPARED_STATEMENTS and DATABASE_POOL_MODE == "transaction":
    raise ImproperlyConfigured(
        "DATABASE_PREPARED_STATEMENTS must be false with DATABASE_POOL_MODE=transaction: "
        "prepared statements do not survive transaction pooling"
    )
if DATABASE_POOL_MODE == "session":
    # Startup parameters: they hold for the whole server session of the connection.
    _db["OPTIONS"]["options"] = (
        f"-c lock_timeout={DATABASE_LOCK_TIMEOUT_MS} "
        f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}"
    )
    if DATABASE_PREPARED_STATEMENTS:
        _db["OPTIONS"]["server_side_binding"] = True
        _db["OPTIONS"]["prepare_threshold"] = 2
else:
    # A transaction pooler refuses the ``options`` startup parameter, or drops it when told
    # to ignore it: the timeouts come from the server side instead (the role's defaults,
    # ALTER ROLE ... SET, or the pooler's connect_query), so values given here would be
    # silently lost, and are refused.
    for _name in ("DATABASE_LOCK_TIMEOUT_MS", "DATABASE_STATEMENT_TIMEOUT_MS"):
        if _name in env.ENVIRON:
            raise ImproperlyConfigured(
                f"{_name} has no effect with DATABASE_POOL_MODE=transaction: set the timeout "
                "on the database role (ALTER ROLE ... SET) or in the pooler's connect_query "
                "(docs/deployment.md, PgBouncer)"
            )
    # Server-side cursors (``.iterator()``) and prepared statements live in one server
    # session. Django's psycopg backend binds parameters client-side and prepares nothing
    # by default; DATABASE_URL must not turn either on.
    for _option in ("server_side_binding", "prepare_threshold"):
        if _db["OPTIONS"].get(_option) not in (None, False):
            raise ImproperlyConfigured(
                f"DATABASE_URL must not set {_option} with DATABASE_POOL_MODE=transaction: "
                "prepared statements do not survive transaction pooling"
            )
    _db["DISABLE_SERVER_SIDE_CURSORS"] = True
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (Redis): DRF throttling state ------------------------------------------
REDIS_CACHE_URL = env.str("REDIS_CACHE_URL", default="redis://127.0.0.1:6379/1")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_CACHE_URL,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

# --- Auth, i18n, static -----------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Times to the second everywhere (holds last minutes): config/formats/en/formats.py.
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LOGIN_URL = "/admin/login/"

# --- Deployment security (all off by default for local HTTP; see README) ----------
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = _bool("CSRF_COOKIE_SECURE", False)
if _bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST framework and OpenAPI ---------------------------------------------------
API_THROTTLE_ANON = env.str("API_THROTTLE_ANON", default="")
API_THROTTLE_USER = env.str("API_THROTTLE_USER", default="")
# ``POST orders/lookup/`` (number + email) is open to anyone: its own scoped rate per client
# address (or user), counted in the cache's Redis, limits guessing.
ORDER_LOOKUP_THROTTLE = env.str("ORDER_LOOKUP_THROTTLE", default="10/min").strip()
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", ORDER_LOOKUP_THROTTLE):
    raise ImproperlyConfigured(
        "ORDER_LOOKUP_THROTTLE must be a rate such as 10/min (a count, then /s, /min, /hour "
        f"or /day), got {ORDER_LOOKUP_THROTTLE!r}"
    )
# How long the token that ``POST orders/lookup/`` answers keeps reading the order.
ORDER_LOOKUP_TOKEN_MAX_AGE_SECONDS = _int(
    "ORDER_LOOKUP_TOKEN_MAX_AGE_SECONDS", 7 * 24 * 3600, minimum=60
)
# Reverse proxies in front of the app that append to X-Forwarded-For: the throttles take
# the client address from that header only then (0: REMOTE_ADDR, so a client cannot pick
# its own address to dodge a rate).
API_NUM_PROXIES = _int("API_NUM_PROXIES", 0, minimum=0)
_throttle_rates = {
    "anon": API_THROTTLE_ANON or None,
    "user": API_THROTTLE_USER or None,
    "order_lookup": ORDER_LOOKUP_THROTTLE,
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        cls
        for cls, rate in (
            ("rest_framework.throttling.AnonRateThrottle", API_THROTTLE_ANON),
            ("rest_framework.throttling.UserRateThrottle", API_THROTTLE_USER),
        )
        if rate
    ],
    "DEFAULT_THROTTLE_RATES": _throttle_rates,
    "NUM_PROXIES": API_NUM_PROXIES,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Checkout API",
    "DESCRIPTION": "Carts as quotes, checkout with stock reservations, orders. See API.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # /api/docs/ loads its JavaScript, CSS and favicon from the project's static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ReservationStatusEnum": "inventory.models.ReservationStatus",
        "ReleaseReasonEnum": "inventory.models.ReleaseReason",
        "StockStatusEnum": "inventory.serializers.STOCK_STATUS_CHOICES",
    },
}

# --- Checkout and reservation policy (SPEC §6) ------------------------------------
CHECKOUT_RESERVATION_TTL_SECONDS = _int("CHECKOUT_RESERVATION_TTL_SECONDS", 300, minimum=1)
CHECKOUT_EXTENSION_TTL_SECONDS = _int("CHECKOUT_EXTENSION_TTL_SECONDS", 300, minimum=1)
CHECKOUT_EXTENSION_THRESHOLD_SECONDS = _int("CHECKOUT_EXTENSION_THRESHOLD_SECONDS", 120, minimum=0)
CHECKOUT_MAX_EXTENSIONS = _int("CHECKOUT_MAX_EXTENSIONS", 3, minimum=0)
CHECKOUT_PAYMENT_TTL_SECONDS = _int("CHECKOUT_PAYMENT_TTL_SECONDS", 900, minimum=1)
CHECKOUT_ABANDON_AFTER_SECONDS = _int("CHECKOUT_ABANDON_AFTER_SECONDS", 1800, minimum=1)
LOW_STOCK_THRESHOLD = _int("LOW_STOCK_THRESHOLD", 5, minimum=0)
ENABLE_PRE_RESERVATION = _bool("ENABLE_PRE_RESERVATION", True)
RESERVATION_MAX_TTL_SECONDS = _int("RESERVATION_MAX_TTL_SECONDS", 1800, minimum=1)
RESERVATION_MIN_TTL_SECONDS = _int("RESERVATION_MIN_TTL_SECONDS", 60, minimum=1)
# How a cart line that names no warehouse is spread over the active warehouses (SPEC §14).
ALLOCATION_STRATEGIES = ("priority", "most_available", "fewest_splits")
ALLOCATION_STRATEGY = env.str("ALLOCATION_STRATEGY", default="priority").strip().lower()
if ALLOCATION_STRATEGY not in ALLOCATION_STRATEGIES:
    raise ImproperlyConfigured(
        f"ALLOCATION_STRATEGY must be one of {', '.join(ALLOCATION_STRATEGIES)}, "
        f"got {ALLOCATION_STRATEGY!r}"
    )

# High demand (SPEC §15): how long an offer made to a waitlist entry holds its units, the
# hold length of a checkout holding a scarce line, and the window of a per-customer limit.
WAITLIST_OFFER_TTL_SECONDS = _int("WAITLIST_OFFER_TTL_SECONDS", 300, minimum=1)
SCARCITY_TTL_SECONDS = _int("SCARCITY_TTL_SECONDS", 120, minimum=1)
PURCHASE_LIMIT_WINDOW_SECONDS = _int("PURCHASE_LIMIT_WINDOW_SECONDS", 30 * 24 * 3600, minimum=1)

if RESERVATION_MIN_TTL_SECONDS > RESERVATION_MAX_TTL_SECONDS:
    raise ImproperlyConfigured(
        "RESERVATION_MIN_TTL_SECONDS must not exceed RESERVATION_MAX_TTL_SECONDS"
    )
for _name in (
    "CHECKOUT_RESERVATION_TTL_SECONDS",
    "CHECKOUT_EXTENSION_TTL_SECONDS",
    "CHECKOUT_PAYMENT_TTL_SECONDS",
    "WAITLIST_OFFER_TTL_SECONDS",
):
    if globals()[_name] > RESERVATION_MAX_TTL_SECONDS:
        raise ImproperlyConfigured(
            f"{_name} ({globals()[_name]}) exceeds RESERVATION_MAX_TTL_SECONDS "
            f"({RESERVATION_MAX_TTL_SECONDS})"
        )

# --- Storefront (SPEC §12) --------------------------------------------------------
# How often the checkout page re-checks stock while the shopper fills in the form.
STOREFRONT_STOCK_POLL_SECONDS = _int("STOREFRONT_STOCK_POLL_SECONDS", 30, minimum=1)
# How often a page showing the shopper's waitlist entries (product page, cart) reads them
# again while it is open: the place in line, and an offer as soon as it is made.
STOREFRONT_WAITLIST_POLL_SECONDS = _int("STOREFRONT_WAITLIST_POLL_SECONDS", 10, minimum=1)

# --- Payments (SPEC §8) -----------------------------------------------------------
PAYMENT_GATEWAY = env.str("PAYMENT_GATEWAY", default="payments.gateway.DummyGateway")
PAYMENT_MAX_TRIES = _int("PAYMENT_MAX_TRIES", 3, minimum=1)
PAYMENT_RETRY_BASE_SECONDS = _read("PAYMENT_RETRY_BASE_SECONDS", float, 0.2)
PAYMENT_TIMEOUT_SECONDS = _read("PAYMENT_TIMEOUT_SECONDS", float, 10.0)
if PAYMENT_RETRY_BASE_SECONDS < 0 or PAYMENT_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("PAYMENT_RETRY_BASE_SECONDS/PAYMENT_TIMEOUT_SECONDS must be > 0")
# Circuit breaker around every gateway call (SPEC §13, payments/breaker.py): opens after
# this many consecutive failures or timeouts (a decline is an answer, not a failure), stays
# open this long, then lets one trial call through. Its state lives in Redis, shared by
# every web and Celery worker; unset, the cache's Redis is used (keys under the namespace).
PAYMENT_BREAKER_FAILURES = _int("PAYMENT_BREAKER_FAILURES", 5, minimum=1)
PAYMENT_BREAKER_RESET_SECONDS = _int("PAYMENT_BREAKER_RESET_SECONDS", 30, minimum=1)
PAYMENT_BREAKER_REDIS_URL = env.str("PAYMENT_BREAKER_REDIS_URL", default="") or REDIS_CACHE_URL
if not PAYMENT_BREAKER_REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        "PAYMENT_BREAKER_REDIS_URL must be a redis://, rediss:// or unix:// URL, "
        f"got {PAYMENT_BREAKER_REDIS_URL!r}"
    )
# Prefix of the breaker's Redis keys: shops sharing one Redis need one each (so do tests).
PAYMENT_BREAKER_NAMESPACE = env.str("PAYMENT_BREAKER_NAMESPACE", default="payments-gateway")
if not PAYMENT_BREAKER_NAMESPACE.strip() or any(c.isspace() for c in PAYMENT_BREAKER_NAMESPACE):
    raise ImproperlyConfigured(
        f"PAYMENT_BREAKER_NAMESPACE must be a non-empty word, got {PAYMENT_BREAKER_NAMESPACE!r}"
    )
# A second confirm of a cart whose payment is in flight (double click, two tabs) waits up
# to this long for the first to finish and answers with its order; then 409.
CHECKOUT_CONFIRM_WAIT_SECONDS = _int("CHECKOUT_CONFIRM_WAIT_SECONDS", 5, minimum=0)
# The gateway part of one confirm (every try, backoff and call timeout, and the void that
# undoes it) ends within PAYMENT_DEADLINE_SECONDS, which must fit inside the web worker's
# timeout (GUNICORN_TIMEOUT, also read by config/gunicorn.conf.py) with
# PAYMENT_DEADLINE_HEADROOM_SECONDS left for the database work of the request: a worker
# killed by its timeout would answer an HTML page and strand the payment.
GUNICORN_TIMEOUT = _int("GUNICORN_TIMEOUT", 30, minimum=1)
PAYMENT_DEADLINE_SECONDS = _int("PAYMENT_DEADLINE_SECONDS", 20, minimum=1)
PAYMENT_DEADLINE_HEADROOM_SECONDS = 5
if PAYMENT_DEADLINE_SECONDS + PAYMENT_DEADLINE_HEADROOM_SECONDS > GUNICORN_TIMEOUT:
    raise ImproperlyConfigured(
        f"PAYMENT_DEADLINE_SECONDS ({PAYMENT_DEADLINE_SECONDS}) does not fit inside "
        f"GUNICORN_TIMEOUT ({GUNICORN_TIMEOUT}): the web worker timeout must be at least "
        f"{PAYMENT_DEADLINE_HEADROOM_SECONDS} s longer than the payment deadline"
    )
if CHECKOUT_CONFIRM_WAIT_SECONDS + PAYMENT_DEADLINE_HEADROOM_SECONDS > GUNICORN_TIMEOUT:
    raise ImproperlyConfigured(
        f"CHECKOUT_CONFIRM_WAIT_SECONDS ({CHECKOUT_CONFIRM_WAIT_SECONDS}) does not fit inside "
        f"GUNICORN_TIMEOUT ({GUNICORN_TIMEOUT})"
    )
# A payment left pending/authorized longer than this was interrupted (its worker died):
# the next confirm of the cart, the reconcile job or staff ask the gateway for its real
# state and finish it. Longer than any request can live, so a live confirm is never
# taken for an interrupted one.
PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS = _int("PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS", 120, minimum=1)
if PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS < GUNICORN_TIMEOUT:
    raise ImproperlyConfigured(
        f"PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS ({PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS}) must not be "
        f"shorter than GUNICORN_TIMEOUT ({GUNICORN_TIMEOUT}): a confirm still running would "
        "be taken for an interrupted one"
    )
# Refunds of cancelled orders (SPEC §13): a refund the gateway refused is retried by the
# reconcile job after REFUND_RETRY_BASE_SECONDS x 1, 2, 4, ... and flagged for staff after
# REFUND_MAX_ATTEMPTS attempts.
REFUND_MAX_ATTEMPTS = _int("REFUND_MAX_ATTEMPTS", 5, minimum=1)
REFUND_RETRY_BASE_SECONDS = _int("REFUND_RETRY_BASE_SECONDS", 60, minimum=0)

# --- Background jobs (SPEC §9) ----------------------------------------------------
EXPIRE_RESERVATIONS_INTERVAL_SECONDS = _int("EXPIRE_RESERVATIONS_INTERVAL_SECONDS", 60, minimum=1)
ABANDON_EXPIRED_CHECKOUTS_INTERVAL_SECONDS = _int(
    "ABANDON_EXPIRED_CHECKOUTS_INTERVAL_SECONDS", 300, minimum=1
)
ABANDON_STALE_CHECKOUTS_INTERVAL_SECONDS = _int(
    "ABANDON_STALE_CHECKOUTS_INTERVAL_SECONDS", 300, minimum=1
)
RELEASE_ORPHANED_RESERVATIONS_INTERVAL_SECONDS = _int(
    "RELEASE_ORPHANED_RESERVATIONS_INTERVAL_SECONDS", 300, minimum=1
)
RECONCILE_PAYMENTS_INTERVAL_SECONDS = _int("RECONCILE_PAYMENTS_INTERVAL_SECONDS", 300, minimum=1)
# The periodic waitlist pass (SPEC §15): offers what an offering transaction had to leave.
WAITLIST_SERVE_INTERVAL_SECONDS = _int("WAITLIST_SERVE_INTERVAL_SECONDS", 30, minimum=1)
CLEANUP_BATCH_SIZE = _int("CLEANUP_BATCH_SIZE", 1000, minimum=1)
CLEANUP_MAX_BATCHES_PER_RUN = _int("CLEANUP_MAX_BATCHES_PER_RUN", 50, minimum=1)

# --- Celery -----------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = _int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_TASK_TIME_LIMIT = _int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Must exceed the longest task, or Redis redelivers a task that is still running.
    "visibility_timeout": max(3600, CELERY_TASK_TIME_LIMIT * 2),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ALWAYS_EAGER = False

# --- Observability ----------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "core.logging.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}
PROMETHEUS_EXPORT_MIGRATIONS = False
# Celery workers keep the LOGGING above (JSON lines with the request id) instead of
# replacing the root logger's handlers with Celery's plain-text format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Set (and emptied) by the launcher before gunicorn/Celery start; prometheus_client reads
# it itself. When set, /metrics aggregates the per-process files of this directory.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# A Celery worker on its own host/container serves its metrics on this port from its main
# process (0: off; on one host with web, web's /metrics already reads the shared directory).
CELERY_WORKER_METRICS_PORT = _int("CELERY_WORKER_METRICS_PORT", 0)
CELERY_WORKER_METRICS_ADDRESS = env.str("CELERY_WORKER_METRICS_ADDRESS", default="0.0.0.0")  # noqa: S104


def _networks(name: str, default: str) -> tuple[str, ...]:
    """Comma-separated CIDRs (a bare address is one host); anything else stops start-up."""
    raw = env.str(name, default=default)
    networks = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must be comma-separated networks such as 10.0.0.0/8, got {part!r}"
            ) from None
    return tuple(networks)


# Who may scrape the web's GET /metrics (docs/deployment.md "Metrics"). Loopback only by
# default: `make run` (bound to 127.0.0.1) is scraped as before, a public bind refuses
# other clients with 403 until their network is listed ("0.0.0.0/0,::/0": any).
METRICS_ALLOWED_NETWORKS = _networks("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
# When set, every scrape must also send "Authorization: Bearer <token>" (401 otherwise).
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="").strip()
if METRICS_BEARER_TOKEN and len(METRICS_BEARER_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_BEARER_TOKEN must be at least 16 characters long")
# Reverse proxies whose X-Forwarded-For /metrics believes (CIDRs); empty: the header is
# ignored and the client is the connection's address.
METRICS_TRUSTED_PROXIES = _networks("METRICS_TRUSTED_PROXIES", "")
