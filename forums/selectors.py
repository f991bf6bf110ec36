"""Reads for the forums, and the triage source loader for forum posts."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import QuerySet

from accounts.models import User
from triage.services import SourceInfo

from .access import visible_posts_q
from .models import Notification, Post, PostState, Reaction, Thread


def triage_source_post(source_id: int, *, context: bool = True) -> SourceInfo:
    """TRIAGE_SOURCE_LOADERS["forum_post"]: the post's text and (context=True) up to 5
    published posts before it in its thread, oldest first."""
    post = Post.objects.select_related("author").get(pk=source_id)
    before = (
        Post.objects.select_related("author")
        .filter(thread_id=post.thread_id, state=PostState.PUBLISHED, deleted_at=None, id__lt=post.id)
        .order_by("-id")[:5]
    )
    context_rows = [
        {"sender": p.author.handle, "role": p.author.role, "body": p.body, "sent_at": p.created_at.isoformat()}
        for p in reversed(list(before))
    ] if context else []
    return SourceInfo(text=post.body, author_id=post.author_id, thread_id=post.thread_id, context=context_rows)


def triage_texts_post(source_ids: list[int]) -> dict[int, str]:
    """TRIAGE_SOURCE_TEXT_LOADERS["forum_post"]: what triage_source_post reads as text."""
    return dict(Post.objects.filter(pk__in=source_ids).values_list("pk", "body"))


def post_list_for_thread(*, user: User, thread: Thread) -> QuerySet[Post]:
    return (
        Post.objects.select_related("author")
        .filter(thread=thread)
        .filter(visible_posts_q(user))
        .order_by("id")
    )


def reaction_summary(*, posts: list[Post], user: User) -> dict[int, dict[str, Any]]:
    """{post_id: {"counts": {kind: n}, "mine": [kinds]}} in one query."""
    out: dict[int, dict[str, Any]] = {p.id: {"counts": Counter(), "mine": []} for p in posts}
    for post_id, kind, user_id in Reaction.objects.filter(post__in=posts).values_list("post_id", "kind", "user_id"):
        out[post_id]["counts"][kind] += 1
        if user_id == user.id:
            out[post_id]["mine"].append(kind)
    return out


def notification_list(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user).order_by("-id")
    if unread_only:
        qs = qs.filter(read_at=None)
    return qs
