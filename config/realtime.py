"""The one way services push to sockets: channel-layer group sends after commit.

Every socket joins `user.<id>` (and `role.<role>`) on authentication, so services
address people, not connections. Pushes are wake-up hints: the database is the
record, and clients resync from it (see ../shared/docs/reliability.md). A failed
send is logged and dropped here on purpose; it never breaks the committed work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

CLIENT_EVENT = "client.event"  # handled by ClientConsumer.client_event: forwards `payload`
SOCKET_CLOSE = "socket.close"  # handled by ClientConsumer.socket_close


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def role_group(role: str) -> str:
    return f"role.{role}"


class DeliveryFailed(Exception):
    """The channel layer could not take a push (Redis down). Callers that track
    delivery (escalations) catch it and leave the work to their sweeper."""


def _group_send(group: str, message: dict[str, Any], *, raise_errors: bool = False) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception as exc:  # Redis down: the database still holds the truth; clients resync.
        logger.warning("channel layer send to %s failed: %s", group, type(exc).__name__)
        if raise_errors:
            raise DeliveryFailed(group) from exc


def send_now(groups: Iterable[str], payload: dict[str, Any], *, raise_errors: bool = False) -> None:
    for group in dict.fromkeys(groups):
        _group_send(group, {"type": CLIENT_EVENT, "payload": payload}, raise_errors=raise_errors)


def send_on_commit(groups: Iterable[str], payload: dict[str, Any]) -> None:
    """Send `payload` to every socket in `groups` once the current transaction commits."""
    targets = list(dict.fromkeys(groups))
    transaction.on_commit(lambda: send_now(targets, payload))


def send_to_users_on_commit(user_ids: Iterable[int], payload: dict[str, Any]) -> None:
    send_on_commit([user_group(uid) for uid in user_ids], payload)


def close_user_sockets_on_commit(user_id: int, *, code: int = 4401, reason: str = "logged_out") -> None:
    message = {"type": SOCKET_CLOSE, "code": code, "reason": reason}
    transaction.on_commit(lambda: _group_send(user_group(user_id), message))
