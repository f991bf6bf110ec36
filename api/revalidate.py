"""Per-process backstop for sockets whose token was revoked or whose user was deactivated.

Logout and deactivation push a close to the user's sockets at once; this catches what a
lost push would miss (S4: closed within 60 s). One task per process checks every
authenticated socket of the process each WS_REVALIDATE_S with two queries in all, instead
of one query per socket (2,000 sockets at 15 s were ~130 queries/s on the ASGI process).

On the core channel layer, memberships live in Redis and vanish on a flush or restart,
so the same pass makes every socket re-add its groups (refreshing group_expiry too); the
pub/sub layer keeps subscriptions in-process and needs no rejoin.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

CHUNK = 500  # ids per IN (...) list

_consumers: weakref.WeakSet = weakref.WeakSet()
_tasks: dict[int, asyncio.Task] = {}


def register(consumer) -> None:
    _consumers.add(consumer)
    loop = asyncio.get_running_loop()
    task = _tasks.get(id(loop))
    if task is None or task.done():
        _tasks[id(loop)] = loop.create_task(_run())


def unregister(consumer) -> None:
    _consumers.discard(consumer)


@database_sync_to_async
def _still_valid(token_ids: list[int], user_ids: list[int]) -> tuple[set[int], set[int]]:
    """Of these, the tokens still valid and the users still active."""
    from accounts.models import AuthToken, User

    tokens: set[int] = set()
    users: set[int] = set()
    for i in range(0, len(token_ids), CHUNK):
        tokens.update(AuthToken.objects.filter(pk__in=token_ids[i : i + CHUNK], revoked_at__isnull=True,
                                               user__is_active=True).values_list("pk", flat=True))
    for i in range(0, len(user_ids), CHUNK):
        users.update(User.objects.filter(pk__in=user_ids[i : i + CHUNK], is_active=True).values_list("pk", flat=True))
    return tokens, users


def _rejoin_needed() -> bool:
    return type(get_channel_layer()).__name__ != "RedisPubSubChannelLayer"


async def sweep() -> int:
    """One pass over this process's sockets; returns how many were closed."""
    live = [c for c in list(_consumers) if c.user is not None]
    if not live:
        return 0
    token_ids = sorted({c.token_id for c in live if c.token_id is not None})
    user_ids = sorted({c.user.id for c in live if c.token_id is None})
    tokens, users = await _still_valid(token_ids, user_ids)
    rejoin = _rejoin_needed()
    closed = 0
    for consumer in live:
        ok = consumer.token_id in tokens if consumer.token_id is not None else consumer.user.id in users
        if not ok:
            closed += 1
            unregister(consumer)
            asyncio.ensure_future(consumer.revoked())
        elif rejoin:
            asyncio.ensure_future(consumer._rejoin_groups())
    return closed


async def _run() -> None:
    while True:
        await asyncio.sleep(settings.WS_REVALIDATE_S)
        try:
            await sweep()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("socket revalidation failed", exc_info=True)
