"""A bound on the HTTP requests one ASGI process runs inside Django at once.

Django runs each request's sync code (views, middleware) in a thread of its own, with
no limit: a burst of REST calls (500 forum posts in 10 s) put dozens of threads in
line for the one GIL, and every websocket frame's database call queued behind them
for each of its steps. Chat latency and crisis delivery went to seconds. Requests
beyond the limit wait here, in arrival order, in the event loop (which costs nothing
while they wait); health probes are never held.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from django.conf import settings

EXEMPT_PATHS = ("/healthz", "/readyz")


class HttpConcurrencyLimit:
    """At most settings.HTTP_CONCURRENCY requests in `app` at once per event loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        limit = int(settings.HTTP_CONCURRENCY)
        if limit <= 0 or scope["type"] != "http" or scope.get("path", "").startswith(EXEMPT_PATHS):
            await self.app(scope, receive, send)
            return
        per_limit = self._semaphores.setdefault(asyncio.get_running_loop(), {})
        semaphore = per_limit.get(limit)
        if semaphore is None:
            semaphore = per_limit[limit] = asyncio.Semaphore(limit)
        async with semaphore:
            await self.app(scope, receive, send)
