"""ASGI entry point: HTTP via Django, websockets at /ws/ via Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
# Django must be set up before anything imports models (the consumer does).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import CookieMiddleware  # noqa: E402
from django.urls import path  # noqa: E402

from api.consumers import ClientConsumer  # noqa: E402
from config.ws_session import WebsocketSessionMiddleware  # noqa: E402


def build_websocket_app():
    # Origin allow-list first (OWASP), then the cookie session for the web client;
    # the consumer itself resolves the user (session, subprotocol token or auth frame).
    return AllowedHostsOriginValidator(
        CookieMiddleware(WebsocketSessionMiddleware(URLRouter([path("ws/", ClientConsumer.as_asgi())])))
    )


from django.conf import settings  # noqa: E402

if settings.EMBEDDED_BEAT:
    from config import embedded_beat

    embedded_beat.start()

from config.http_limit import HttpConcurrencyLimit  # noqa: E402
from config.realtime import SendPushesFromLoop  # noqa: E402

application = ProtocolTypeRouter({
    "http": SendPushesFromLoop(HttpConcurrencyLimit(django_asgi_app)),
    "websocket": build_websocket_app(),
})

from config.gc_tuning import tune_for_server  # noqa: E402

# Last: everything loaded so far lives as long as the process (config/gc_tuning.py).
tune_for_server(gen0_threshold=settings.ASGI_GC_GEN0_THRESHOLD)
