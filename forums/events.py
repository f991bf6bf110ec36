"""Forum pushes. Called only from services; every send happens after commit.

Frames (docs/forums.md):
- `forum.post` to `forum.thread.<id>` and `forum.board.<id>` subscribers:
  {"type": "forum.post", "event": "published"|"updated"|"removed", "board_id", "thread_id", "post"}
  ("removed" carries only {"id"}: held again, rejected or deleted).
- `forum.reactions` to `forum.thread.<id>`: {"type", "thread_id", "post_id", "reactions": {kind: n}}.
- both are coalesced per group (config.realtime._Coalescer): a busy thread's watchers get
  at most one frame per 200 ms after the first, `{"type": "batch", "frames": [...]}`.
- `notification` to `user.<id>`: {"type": "notification", "id", "kind", "created_at", ...data}.
"""

from __future__ import annotations

from typing import Any

from config.realtime import send_on_commit, send_to_users_on_commit

from .models import Notification, Post
from .payloads import post_payload


def thread_group(thread_id: int) -> str:
    return f"forum.thread.{thread_id}"


def board_group(board_id: int) -> str:
    return f"forum.board.{board_id}"


def forum_post_frame(post: Post, event: str) -> dict[str, Any]:
    body = {"id": post.id} if event == "removed" else post_payload(post)
    return {
        "type": "forum.post",
        "event": event,
        "board_id": post.thread.board_id,
        "thread_id": post.thread_id,
        "post": body,
    }


def post_event(post: Post, event: str) -> None:
    groups = [thread_group(post.thread_id), board_group(post.thread.board_id)]
    send_on_commit(groups, forum_post_frame(post, event), coalesce=True)


def notification_frame(notification: Notification) -> dict[str, Any]:
    return {
        **notification.data,
        "type": "notification",
        "id": notification.id,
        "kind": notification.kind,
        "created_at": notification.created_at.isoformat(),
    }


def notification_pushed(notification: Notification) -> None:
    send_to_users_on_commit([notification.user_id], notification_frame(notification))


def reactions_event(post: Post, counts: dict[str, int]) -> None:
    send_on_commit(
        [thread_group(post.thread_id)],
        {"type": "forum.reactions", "thread_id": post.thread_id, "post_id": post.id, "reactions": counts},
        coalesce=True,
    )
