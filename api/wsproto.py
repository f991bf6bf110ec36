"""The websocket protocol's dispatch table.

Each app declares its frame handlers in `<app>/ws.py` with `@ws_handler("type", roles=...)`.
A handler is a plain synchronous function `(user, frame) -> WsResult | dict | list | None`
that validates the frame, calls one service and returns what to send back to *this*
socket. It runs in a worker thread via `database_sync_to_async`; it never touches the
channel layer itself (services push events after commit).

A route may also have an `on_loop` handler: an async function `(user, frame)` run on the
event loop first, for a frame type hot enough that the thread hop matters (message.send,
chat.services.message_send_on_loop). It returns what the handler would, or None to hand
the frame to the handler in a worker thread as usual. Such a frame is handled in a task of
its own, and pushes reach the socket while it runs (api.consumers.ClientConsumer.dispatch),
so a route gets an `on_loop` handler only if the frame's sole output is its reply: no group
joined or left, nothing sent before the end.

Connect hooks (`@ws_on_connect`) run once a socket is authenticated and may join groups
(e.g. a clinician's rota group) or send an initial state frame.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from config.exceptions import ServiceError


class FrameInvalid(ServiceError):
    code = "validation_error"
    status = 400


@dataclass
class WsResult:
    replies: list[dict[str, Any]] = field(default_factory=list)
    join: list[str] = field(default_factory=list)
    leave: list[str] = field(default_factory=list)


Handler = Callable[[Any, dict[str, Any]], "WsResult | dict | list | None"]
OnLoopHandler = Callable[[Any, dict[str, Any]], Awaitable["WsResult | dict | list | None"]]


@dataclass(frozen=True)
class Route:
    type: str
    handler: Handler
    roles: frozenset[str] | None  # None: any authenticated user
    on_loop: OnLoopHandler | None = None


_ROUTES: dict[str, Route] = {}
_CONNECT_HOOKS: list[Callable[[Any], WsResult | None]] = []
_loaded = False


def ws_handler(frame_type: str, *, roles: Iterable[str] | None = None, on_loop: OnLoopHandler | None = None):
    def register(fn: Handler) -> Handler:
        if frame_type in _ROUTES and _ROUTES[frame_type].handler is not fn:
            raise RuntimeError(f"websocket frame type {frame_type!r} registered twice")
        _ROUTES[frame_type] = Route(frame_type, fn, frozenset(roles) if roles is not None else None, on_loop)
        return fn

    return register


def ws_on_connect(fn: Callable[[Any], WsResult | None]):
    if fn not in _CONNECT_HOOKS:
        _CONNECT_HOOKS.append(fn)
    return fn


def load_handlers() -> None:
    """Import every app's `ws` module once (they register on import)."""
    global _loaded
    if _loaded:
        return
    for module in getattr(settings, "WS_HANDLER_MODULES", []):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    _loaded = True


def route_for(frame_type: str) -> Route | None:
    load_handlers()
    return _ROUTES.get(frame_type)


def connect_hooks() -> list[Callable[[Any], WsResult | None]]:
    load_handlers()
    return list(_CONNECT_HOOKS)


def registered_types() -> list[str]:
    load_handlers()
    return sorted(_ROUTES)


def as_result(value: WsResult | dict | list | None) -> WsResult:
    if value is None:
        return WsResult()
    if isinstance(value, WsResult):
        return value
    if isinstance(value, dict):
        return WsResult(replies=[value])
    return WsResult(replies=list(value))


# Small frame-field helpers so handlers validate consistently.
def field_int(frame: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    value = frame.get(name)
    if value is None:
        if required:
            raise FrameInvalid(f"`{name}` is required.")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.isdigit():
            return int(value)
        raise FrameInvalid(f"`{name}` must be an integer.")
    return value


def field_str(frame: dict[str, Any], name: str, *, required: bool = True, max_len: int = 4000) -> str | None:
    value = frame.get(name)
    if value is None:
        if required:
            raise FrameInvalid(f"`{name}` is required.")
        return None
    if not isinstance(value, str):
        raise FrameInvalid(f"`{name}` must be a string.")
    if len(value) > max_len:
        raise FrameInvalid(f"`{name}` is longer than {max_len} characters.")
    return value
