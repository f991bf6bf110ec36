"""Liveness and readiness. Readiness reports each dependency separately."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from config.realtime import layer_is_pubsub


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True, "vendor": connection.vendor}


def _check_channel_layer() -> dict:
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "detail": "no channel layer configured"}

    async def roundtrip() -> None:
        channel = await layer.new_channel("readyz.")
        try:
            token = uuid.uuid4().hex
            await layer.send(channel, {"type": "readyz.ping", "token": token})
            message = await layer.receive(channel)
            if message.get("token") != token:
                raise RuntimeError("channel layer returned a different message")
        finally:
            await _channel_forget(layer, channel)

    async_to_sync(roundtrip)()
    return {"ok": True, "backend": type(layer).__name__}


async def _channel_forget(layer, channel: str) -> None:
    """The pub/sub layer keeps a channel subscribed until a receive on it is cancelled
    (how Channels' consumers end); do the same, or every probe would leave one behind.
    The core layer's channel keys expire by themselves."""
    if not layer_is_pubsub(layer):
        return
    waiter = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter


def _celery_checks() -> tuple[dict, dict]:
    from config.celery import app

    if app.conf.task_always_eager:
        inline = {"ok": True, "mode": "in-process"}
        return inline, dict(inline)
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    broker = {"ok": True, "transport": app.conf.broker_url.split(":", 1)[0]}
    replies = app.control.ping(timeout=1.0) or []
    workers = {"ok": bool(replies), "count": len(replies)}
    return broker, workers


def _safe(check) -> dict:
    try:
        return check()
    except Exception as exc:
        return {"ok": False, "detail": type(exc).__name__}


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _safe(_check_database), "channel_layer": _safe(_check_channel_layer)}
    try:
        broker, workers = _celery_checks()
    except Exception as exc:
        broker, workers = {"ok": False, "detail": type(exc).__name__}, {"ok": False, "detail": "broker unreachable"}
    checks["broker"], checks["workers"] = broker, workers
    ready = all(c.get("ok") for c in checks.values())
    return JsonResponse({"status": "ready" if ready else "not_ready", "checks": checks}, status=200 if ready else 503)
