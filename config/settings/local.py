"""Embedded defaults for a developer machine or a demo: nothing to install but Python."""

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, SECRET_KEY, local_secret_key

DEBUG = True
SECRET_KEY = SECRET_KEY or local_secret_key()
# The browsable API is a development aid only (an XSS was fixed there in DRF 3.15.2).
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
# No broker, no beat process: deadlines and sweepers run in the ASGI process instead.
EMBEDDED_BEAT = CELERY_TASK_ALWAYS_EAGER  # noqa: F405
