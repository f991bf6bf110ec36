"""Moderator live feed. Called only from services; sent after commit.

Frame to `role.moderator`, `role.supervisor` and `role.admin`:
{"type": "moderation.item", "event": "created"|"updated"|"claimed"|"released"|"decided"|"closed",
 "item": item_summary}
"""

from __future__ import annotations

from config.realtime import role_group, send_on_commit

from .models import QueueItem
from .payloads import item_summary

FEED_ROLES = ("moderator", "supervisor", "admin")


def feed_groups() -> list[str]:
    return [role_group(role) for role in FEED_ROLES]


def item_frame(item: QueueItem, event: str) -> dict:
    return {"type": "moderation.item", "event": event, "item": item_summary(item)}


def item_event(item: QueueItem, event: str) -> None:
    send_on_commit(feed_groups(), item_frame(item, event))
