"""Notices when Redis lost our channel-layer state, so sockets recover at once.

A Redis restart or FLUSHALL silently drops every group membership: pushes then
"succeed" without reaching anyone, and redis-py reconnects without raising, so a
consumer cannot tell. One watcher per process keeps a sentinel key in Redis; when the
key is gone (data lost) or Redis was unreachable, every live consumer of this process
rejoins its groups and resends its connect-time state (chat.state, escalation.list),
and clients resync from the database. The periodic rejoin (api.revalidate) remains the
backstop.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from django.conf import settings

from . import sockets

logger = logging.getLogger(__name__)


def enabled() -> bool:
    return bool(settings.REDIS_URL) and settings.WS_LAYER_WATCH_S > 0


def start() -> None:
    """Watch from this event loop (once); the sockets are those in api.sockets."""
    if enabled():
        sockets.run_per_loop("layer_watch", _watch)


async def _watch() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    key = f"earlyhelp:layer-sentinel:{uuid.uuid4().hex}"
    known = False  # whether the sentinel was in place at the last successful check
    broken = False
    while True:
        try:
            present = await client.exists(key)
            if not present:
                await client.set(key, "1", ex=7 * 86400)
            lost = (known and not present) or broken
            known, broken = True, False
            if lost:
                live = sockets.live()
                logger.warning("channel layer state was lost (Redis restart or flush); %d sockets recover", len(live))
                for consumer in live:
                    consumer.layer_recovered()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not broken:
                logger.warning("channel layer watch: Redis unreachable (%s)", type(exc).__name__)
            broken = True
        await asyncio.sleep(settings.WS_LAYER_WATCH_S)
