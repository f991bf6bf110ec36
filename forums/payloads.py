"""The one place forum objects become JSON, for REST and websocket frames alike."""

from __future__ import annotations

from typing import Any

from accounts.models import User

from .access import is_moderating
from .models import Board, Post, PostState, ReactionKind, Thread


def board_payload(board: Board) -> dict[str, Any]:
    return {
        "id": board.id,
        "slug": board.slug,
        "name": board.name,
        "description": board.description,
        "policy": board.policy,
        "min_age": board.min_age,
        "max_age": board.max_age,
    }


def author_payload(user: User) -> dict[str, Any]:
    # Pseudonymous: a handle only; staff show their display name and role.
    return {"handle": user.public_name, "staff": user.is_staff_member}


def post_payload(post: Post, *, viewer: User | None = None, reactions: dict[str, Any] | None = None) -> dict[str, Any]:
    """`viewer=None` is the public form (pushed to subscribers): never held content."""
    privileged = viewer is not None and (viewer.id == post.author_id or is_moderating(viewer))
    deleted = post.deleted_at is not None
    counts = dict((reactions or {}).get("counts") or {})
    data: dict[str, Any] = {
        "id": post.id,
        "thread_id": post.thread_id,
        "author": author_payload(post.author),
        "body": "" if deleted and not (viewer is not None and is_moderating(viewer)) else post.body,
        "state": post.state,
        "waiting": post.state == PostState.HELD,
        "is_first": post.is_first,
        "revision": post.revision,
        "created_at": post.created_at.isoformat(),
        "edited_at": post.edited_at.isoformat() if post.edited_at else None,
        "deleted": deleted,
        "reactions": {kind: counts.get(kind, 0) for kind in ReactionKind.values},
    }
    if viewer is not None:
        data["mine"] = viewer.id == post.author_id
        data["my_reactions"] = list((reactions or {}).get("mine") or [])
    if privileged and post.state == PostState.REJECTED:
        data["reject_reason"] = post.reject_reason
        data["reject_message"] = post.reject_message
    return data


def thread_payload(thread: Thread, *, first_post: Post | None, viewer: User | None = None) -> dict[str, Any]:
    return {
        "id": thread.id,
        "board_id": thread.board_id,
        "title": thread.title,
        "author": author_payload(thread.author),
        "created_at": thread.created_at.isoformat(),
        "last_activity_at": thread.last_activity_at.isoformat(),
        "reply_count": max(thread.published_count - 1, 0),
        "first_post": post_payload(first_post, viewer=viewer) if first_post is not None else None,
    }
