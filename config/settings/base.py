"""Settings shared by every environment.

Everything is environment-driven. With nothing set, the service runs on embedded
defaults: SQLite, the in-memory channel layer, Celery tasks executed in-process and a
generated local secret. `REDIS_URL` switches the channel layer, cache and Celery
broker to Redis; `DATABASE_URL` switches the database (PostgreSQL in production).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("EARLYHELP_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def local_secret_key() -> str:
    """A secret generated once per checkout, so local sessions survive restarts.

    Never used in production: production.py requires DJANGO_SECRET_KEY.
    """
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or os.environ.get("SECRET_KEY") or ""
DEBUG = False
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",  # must precede staticfiles: `runserver` then serves ASGI (websockets too)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "api",
    "triage",
    "chat",
    "forums",
    "moderation",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Database -----------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # Under ASGI every request and websocket call may run on its own thread, so persistent
    # per-thread connections (CONN_MAX_AGE) pile up until PostgreSQL refuses clients. A
    # bounded psycopg pool per process instead: callers wait for a free connection.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": int(os.environ.get("DB_POOL_MIN", "2")),
            "max_size": int(os.environ.get("DB_POOL_MAX", "16")),
            "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "10")),
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # SQLite serialises writers; wait instead of failing under concurrent sockets.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- Redis: channel layer, cache, Celery broker ---------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")

# Chat text is health data: it must not sit in Redis in plain text.
CHANNEL_ENCRYPTION_KEY = os.environ.get("CHANNEL_ENCRYPTION_KEY", "")

# Which channels_redis layer carries live pushes (docs/reliability.md, "Channel layer"):
# "pubsub" (default): Redis PUBLISH/SUBSCRIBE, no state in Redis, one round trip per push,
#   about a third of the server's CPU per chat message less than "core" (docs/benchmarks.md);
#   a socket that is not subscribed at the moment of a push misses it, like any lost push.
# "core": RedisChannelLayer, per-channel buffers in Redis with capacity and expiry.
# Either way a push is a hint: clients resync from the database on a seq gap, and
# escalations are re-sent until a clinician's page confirms receipt.
CHANNEL_LAYER = os.environ.get("CHANNEL_LAYER", "pubsub")
if CHANNEL_LAYER not in ("pubsub", "core"):
    raise ImproperlyConfigured("CHANNEL_LAYER must be 'pubsub' or 'core'.")

if REDIS_URL:
    _layer_config = {
        # redis-py 8 times reads out after 5 s by default, exactly channels_redis's
        # blocking-receive wait (core layer): give reads head-room so idle sockets don't
        # time out.
        "hosts": [{"address": REDIS_URL, "socket_timeout": 10, "socket_connect_timeout": 5}],
        "symmetric_encryption_keys": [CHANNEL_ENCRYPTION_KEY or SECRET_KEY or "dev-only-key"],
    }
    if CHANNEL_LAYER == "core":
        _layer_config.update(
            # Per-channel buffer. Live pushes are hints (the database is the record), so
            # overflow costs a resync, not a message.
            capacity=int(os.environ.get("CHANNEL_CAPACITY", "1000")),
            expiry=60,
            # Longer than the longest socket (Daphne's websocket_timeout, 24 h).
            group_expiry=int(os.environ.get("CHANNEL_GROUP_EXPIRY", "86400")),
        )
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "config.layers.PubSubChannelLayer" if CHANNEL_LAYER == "pubsub"
            else "channels_redis.core.RedisChannelLayer",
            "CONFIG": _layer_config,
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "earlyhelp",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# HTTP requests one ASGI process runs inside Django at once; more wait in the event loop
# (config/http_limit.py). Websocket frames are not counted. 0 = no limit.
HTTP_CONCURRENCY = int(os.environ.get("HTTP_CONCURRENCY", "2"))

# --- Celery (see ../shared/docs/reliability.md) ---------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not bool(REDIS_URL or os.environ.get("CELERY_BROKER_URL"))
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 30
CELERY_TASK_TIME_LIMIT = 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 120}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "triage.*": {"queue": "triage"},
    "escalation.*": {"queue": "crisis"},
    "moderation.*": {"queue": "moderation"},
}
CELERY_TIMEZONE = "UTC"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"

# --- REST -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "api.throttling.AnonRateThrottle",  # DRF's, on one cache backend per process
        "api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("THROTTLE_ANON", "60/min"),
        "user": os.environ.get("THROTTLE_USER", "600/min"),
        "auth": os.environ.get("THROTTLE_AUTH", "20/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Early Help API",
    "DESCRIPTION": "Counselling chat, peer forums, crisis triage and escalation for young people.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}

# --- Websocket protocol limits ------------------------------------------------------
# The consumer answers an oversize frame with an explicit error; Daphne's own, larger
# limit (see README) is the backstop that closes abusive connections.
WS_MAX_FRAME_BYTES = 64 * 1024
WS_AUTH_TIMEOUT_S = 10
WS_RATE_PER_S = float(os.environ.get("WS_RATE_PER_S", "10"))
WS_RATE_BURST = int(os.environ.get("WS_RATE_BURST", "30"))
# How often an open socket re-checks that its user and token are still valid.
WS_REVALIDATE_S = float(os.environ.get("WS_REVALIDATE_S", "15"))
# How often each ASGI process checks that Redis still holds its channel-layer state
# (api/layer_watch.py); 0 turns the watch off.
WS_LAYER_WATCH_S = float(os.environ.get("WS_LAYER_WATCH_S", "1"))
# The ASGI process's first-generation GC threshold (Python's default is 700; 0 keeps it):
# fewer, shorter stop-the-world pauses under load (config/gc_tuning.py).
ASGI_GC_GEN0_THRESHOLD = int(os.environ.get("ASGI_GC_GEN0_THRESHOLD", "50000"))
MESSAGE_MAX_CHARS = 4000

# --- Domain -------------------------------------------------------------------------
RESERVED_HANDLES = [
    "admin", "administrator", "root", "system", "moderator", "mod", "counsellor", "counselor",
    "clinician", "supervisor", "staff", "support", "help", "helpline", "official", "earlyhelp",
    "samaritans", "childline", "shout", "kooth", "nhs", "police", "anonymous", "null", "undefined",
]

CRISIS_RESOURCES = [
    {"name": "Emergency services", "contact": "999", "when": "If you or someone else is in immediate danger"},
    {"name": "Samaritans", "contact": "116 123", "when": "24/7, free"},
    {"name": "Shout", "contact": "Text SHOUT to 85258", "when": "24/7, free text line"},
    {"name": "Childline", "contact": "0800 1111", "when": "Under 19s, free"},
    {"name": "NHS 111", "contact": "111, option 2", "when": "Mental health crisis"},
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"cancelled_unsubscribe": {"()": "config.logging_filters.CancelledUnsubscribe"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Never log request bodies or websocket payloads: they hold chat text and tokens.
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
        # A socket's unsubscribe cut off by the server's shutdown: INFO, not an ERROR traceback.
        "channels_redis.pubsub": {"filters": ["cancelled_unsubscribe"]},
    },
}
WS_HANDLER_MODULES = ["accounts.ws", "chat.ws", "triage.ws", "forums.ws", "moderation.ws"]
API_URL_MODULES = ["chat.api_urls", "triage.api_urls", "forums.api_urls", "moderation.api_urls"]

# --- Triage and escalation ----------------------------------------------------------
# Loaders that turn (source_type, source_id) into text and context for triage.
TRIAGE_SOURCE_LOADERS = {
    "chat_message": "chat.selectors.triage_source_message",
    "session_request": "chat.selectors.triage_source_request",
    "forum_post": "forums.selectors.triage_source_post",
}
# The same texts in bulk, for the model layer's batches: `loader(ids) -> {id: text}`, one
# query per batch instead of one per source (a type without one falls back to the above).
TRIAGE_SOURCE_TEXT_LOADERS = {
    "chat_message": "chat.selectors.triage_texts_message",
    "session_request": "chat.selectors.triage_texts_request",
    "forum_post": "forums.selectors.triage_texts_post",
}
# Seconds a clinician has to acknowledge, per level (issue: imminent 60 s, high 5 min).
ESCALATION_ACK_SECONDS = {
    "imminent": int(os.environ.get("ESCALATION_ACK_IMMINENT_S", "60")),
    "high": int(os.environ.get("ESCALATION_ACK_HIGH_S", "300")),
}
# School names the inline layer reports as personal details (docs/triage.md). Set here,
# even empty, because a setting that is missing costs an exception each time it is read,
# and the inline layer reads this for every message.
TRIAGE_SCHOOL_NAMES: tuple[str, ...] = ()
# Run the asynchronous model layer (Celery `triage` queue) after every inline assessment.
TRIAGE_MODEL_DISPATCH = env_bool("TRIAGE_MODEL_DISPATCH", True)
# fp32, bf16, int8 or auto (int8 with VNNI and no AMX or AVX2-only, bf16 with AMX or AMD bf16, else fp32): triage/model.py.
TRIAGE_MODEL_PRECISION = os.environ.get("TRIAGE_MODEL_PRECISION", "auto")
# CPU priority a `triage`-queue worker takes at start: a niceness, or "idle" (config/celery.py).
TRIAGE_WORKER_NICE = os.environ.get("TRIAGE_WORKER_NICE", "idle")
# torch, onnx or auto (ONNX Runtime for fp32 and int8 when it is installed): triage/model.py.
TRIAGE_MODEL_RUNTIME = os.environ.get("TRIAGE_MODEL_RUNTIME", "auto")
# Run the beat schedule inside the ASGI process (embedded mode only; see config/embedded_beat.py).
EMBEDDED_BEAT = False
# Trained triage artefacts (built by `manage.py triage train`; not committed: ~90 MB).
TRIAGE_MODEL_DIR = os.environ.get("TRIAGE_MODEL_DIR", str(VAR_DIR / "models"))
TRIAGE_DATA_DIR = os.environ.get("TRIAGE_DATA_DIR", str((BASE_DIR / ".." / "shared" / "data" / "triage").resolve()))

# --- Chat (see docs/protocol.md) ------------------------------------------------------
CHAT_MESSAGE_RATE = int(os.environ.get("CHAT_MESSAGE_RATE", "30"))  # per user ...
CHAT_MESSAGE_RATE_WINDOW_S = int(os.environ.get("CHAT_MESSAGE_RATE_WINDOW_S", "10"))  # ... per window
# message.send's common case on the event loop with psycopg's async driver, no thread hop
# (PostgreSQL only; chat.services.message_send_on_loop, config/loopdb.py); connections per
# event loop for it, opened only as concurrent sends need them (why this many: config/loopdb.py).
CHAT_SEND_ON_LOOP = env_bool("CHAT_SEND_ON_LOOP", True)
CHAT_LOOP_DB_CONNECTIONS = int(os.environ.get("CHAT_LOOP_DB_CONNECTIONS", "16"))
# Send transactions in flight per event loop; messages arriving beyond them wait and share
# the next one (group commit, chat.services._GroupCommit; why 4: docs/benchmarks.md, twentieth pass).
CHAT_SEND_TRANSACTIONS = int(os.environ.get("CHAT_SEND_TRANSACTIONS", "4"))
# Seconds an unused one stays open (0: for the life of the process).
CHAT_LOOP_DB_MAX_IDLE_S = float(os.environ.get("CHAT_LOOP_DB_MAX_IDLE_S", "600"))
# Its statements as server-side prepared statements (PREPARE once per connection, then EXECUTE):
# PostgreSQL plans each once per connection, not once per message (config/loopdb.py). Turn off
# behind a pooler in transaction mode (PgBouncer's pool_mode=transaction), where a later
# transaction may run on a server connection that never saw the PREPARE.
CHAT_LOOP_DB_PREPARE = env_bool("CHAT_LOOP_DB_PREPARE", True)
CHAT_SILENCE_TIMEOUT_S = int(os.environ.get("CHAT_SILENCE_TIMEOUT_S", "1800"))
CHAT_COUNSELLOR_CAPACITY = int(os.environ.get("CHAT_COUNSELLOR_CAPACITY", "3"))
