"""The cookie session for websockets, without wrapping every frame the consumer sends.

Channels' SessionMiddleware wraps `send` so that it can save the session and set its cookie
on an HTTP response. A websocket has no response to carry a cookie, and the wrapper never
saves on a websocket frame, yet it still reads the session's `modified` and `is_empty()`
(through two lazy proxies) and three settings for every frame sent: about 2% of the ASGI
process's CPU under chat load (docs/benchmarks.md, twenty-second pass). Here the scope gets
the session store for the cookie's key, which loads nothing until read (the consumer reads
it once, at connect, when no token is offered), and `send` is passed through.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings


class WebsocketSessionMiddleware:
    """For websocket scopes only; must run inside channels' CookieMiddleware."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("WebsocketSessionMiddleware serves websocket scopes only.")
        if "cookies" not in scope:
            raise ValueError("No cookies in scope: WebsocketSessionMiddleware must run inside CookieMiddleware.")
        session = self.store(scope["cookies"].get(settings.SESSION_COOKIE_NAME))
        return await self.app(dict(scope, session=session), receive, send)
