"""Test settings.

Quick path (plain `pytest`): SQLite and the in-memory channel layer.
Real path (`make test`, `.ci/run`): DATABASE_URL and REDIS_URL point at the local
PostgreSQL and Redis, so the same suite runs on channels_redis and a real Celery
worker; tests marked `real` need them and skip with a reason otherwise.
"""

import os

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK

SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuvwxyz"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Throttling is exercised by its own tests with explicit rates.
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": "10000/min", "user": "10000/min", "auth": "10000/min"}}
WS_AUTH_TIMEOUT_S = 3
# Tasks run in-process unless a test starts a real worker (tests/conftest.py:
# `celery_worker` flips this off for its duration; the worker process itself and
# Daphne processes started by tests get EARLYHELP_TEST_EAGER=0).
CELERY_TASK_ALWAYS_EAGER = os.environ.get("EARLYHELP_TEST_EAGER", "1") == "1"
# Most tests exercise the inline layer only; tests of the model layer call it directly
# or turn this on (EARLYHELP_TEST_MODEL_DISPATCH=1 for child processes).
TRIAGE_MODEL_DISPATCH = os.environ.get("EARLYHELP_TEST_MODEL_DISPATCH", "0") == "1"
# In-process websocket tests run one event loop per test: no per-loop watcher there.
# Child processes (Daphne started by tests) get WS_LAYER_WATCH_S=1 from their env.
WS_LAYER_WATCH_S = float(os.environ.get("WS_LAYER_WATCH_S", "0"))
