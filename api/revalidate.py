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

from channels.db import database_sync_to_async
from django.conf import settings

from config.realtime import layer_is_pubsub

from . import sockets

logger = logging.getLogger(__name__)

CHUNK = 500  # ids per IN (...) list


def start() -> None:
    """Revalidate from this event loop (once); the sockets are those in api.sockets."""
    sockets.run_per_loop("revalidate", _run)


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


async def sweep() -> int:
    """One pass over this process's sockets; returns how many were closed."""
    live = sockets.live()
    if not live:
        return 0
    token_ids = sorted({c.token_id for c in live if c.token_id is not None})
    user_ids = sorted({c.user.id for c in live if c.token_id is None})
    tokens, users = await _still_valid(token_ids, user_ids)
    rejoin = not layer_is_pubsub()
    closed = 0
    for consumer in live:
        ok = consumer.token_id in tokens if consumer.token_id is not None else consumer.user.id in users
        if not ok:
            closed += 1
            sockets.unregister(consumer)
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
