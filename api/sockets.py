"""This process's authenticated sockets, and one task per event loop for each of the
per-process loops that look after them (api.revalidate: revoked tokens and deactivated
users; api.layer_watch: channel-layer state lost in Redis)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

_sockets: weakref.WeakSet = weakref.WeakSet()
_tasks: dict[tuple[int, str], asyncio.Task] = {}


def register(consumer) -> None:
    _sockets.add(consumer)


def unregister(consumer) -> None:
    """On disconnect (or revocation): a closed socket is no one's to look after."""
    _sockets.discard(consumer)


def live() -> list:
    """The registered sockets that are still authenticated."""
    return [c for c in list(_sockets) if c.user is not None]


def run_per_loop(name: str, loop_body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Start `loop_body` once on the running event loop (again if it ended)."""
    loop = asyncio.get_running_loop()
    key = (id(loop), name)
    task = _tasks.get(key)
    if task is None or task.done():
        _tasks[key] = loop.create_task(loop_body())
