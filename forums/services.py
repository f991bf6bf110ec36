"""Forum writes. Typed, keyword-only; events go out after commit via events.py.

Moderation owns what happens to a post after it is stored: every create and edit
writes the post and its moderation outbox row (moderation.services.submission_open)
in one transaction, and the pipeline publishes, holds or routes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from config.exceptions import ValidationFailed

from . import events
from .exceptions import EditWindowClosed, InvalidReaction, PostDeleted, PostNotPublished
from .models import (
    Board,
    ModerationPolicy,
    Notification,
    Post,
    PostState,
    Reaction,
    ReactionKind,
    Thread,
)

TITLE_MAX = 140


def _body_clean(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationFailed({"body": ["Write something first."]})
    limit = getattr(settings, "FORUMS_POST_MAX_CHARS", getattr(settings, "MESSAGE_MAX_CHARS", 4000))
    if len(body) > limit:
        raise ValidationFailed({"body": [f"Posts are limited to {limit} characters."]})
    return body


def _initial_state(board: Board) -> str:
    # Post-moderated boards publish first and review after; everything else waits.
    return PostState.PUBLISHED if board.policy == ModerationPolicy.POST else PostState.HELD


def _post_store(*, thread: Thread, author: User, body: str, is_first: bool) -> Post:
    from moderation.services import submission_open

    now = timezone.now()
    state = _initial_state(thread.board)
    post = Post.objects.create(
        thread=thread,
        author=author,
        body=body,
        is_first=is_first,
        state=state,
        created_at=now,
        published_at=now if state == PostState.PUBLISHED else None,
    )
    post.thread = thread
    submission_open(post=post)
    if state == PostState.PUBLISHED:
        _published_bookkeeping(post, now=now)  # last: it locks the thread row until commit
    return post


def thread_create(*, user: User, board: Board, title: str, body: str) -> Thread:
    """Store a thread and its first post (held, or published on `post` boards)."""
    from moderation.services import posting_check, watched_words_apply

    posting_check(user=user)
    title = (title or "").strip()
    if not title:
        raise ValidationFailed({"title": ["A title is needed."]})
    if len(title) > TITLE_MAX:
        raise ValidationFailed({"title": [f"Titles are limited to {TITLE_MAX} characters."]})
    title = watched_words_apply(text=title)
    body = watched_words_apply(text=_body_clean(body))
    with transaction.atomic():
        thread = Thread.objects.create(board=board, author=user, title=title)
        thread.board = board
        post = _post_store(thread=thread, author=user, body=body, is_first=True)
    thread.first_post = Post.objects.select_related("author").get(pk=post.pk)  # type: ignore[attr-defined]
    return thread


def post_create(*, user: User, thread: Thread, body: str) -> Post:
    """Store a reply; the caller obtained `thread` through access.py."""
    from moderation.services import posting_check, watched_words_apply

    posting_check(user=user)
    body = watched_words_apply(text=_body_clean(body))
    with transaction.atomic():
        post = _post_store(thread=thread, author=user, body=body, is_first=False)
    # With an eager pipeline (tests, local) the post may already be published or held.
    return Post.objects.select_related("author", "thread__board").get(pk=post.pk)


def post_edit(*, user: User, post: Post, body: str) -> Post:
    """An edit is a new revision, moderated again: held on pre/auto boards until the
    pipeline (and perhaps a moderator) clears it."""
    from moderation.services import posting_check, submission_open, watched_words_apply

    posting_check(user=user)
    window = int(getattr(settings, "FORUMS_EDIT_WINDOW_S", 900))
    body = watched_words_apply(text=_body_clean(body))
    with transaction.atomic():
        post = Post.objects.select_for_update(of=("self",)).select_related("thread__board", "author").get(pk=post.pk)
        if post.deleted_at is not None:
            raise PostDeleted()
        if timezone.now() - post.created_at > dt.timedelta(seconds=window):
            raise EditWindowClosed()
        was_published = post.state == PostState.PUBLISHED
        post.body = body
        post.revision += 1
        post.edited_at = timezone.now()
        new_state = _initial_state(post.thread.board)
        if was_published and new_state == PostState.HELD:
            _unpublished_bookkeeping(post)
            events.post_event(post, "removed")
        post.state = new_state
        post.save(update_fields=["body", "revision", "edited_at", "state"])
        if post.state == PostState.PUBLISHED:
            events.post_event(post, "updated")
        submission_open(post=post)
    return Post.objects.select_related("author", "thread__board").get(pk=post.pk)


def post_delete(*, user: User, post: Post) -> Post:
    """Soft delete by the author. Care items stay open: a deleted cry for help still
    needs a person (moderation.services.post_withdrawn)."""
    from moderation.services import post_withdrawn

    with transaction.atomic():
        post = Post.objects.select_for_update(of=("self",)).select_related("thread__board", "author").get(pk=post.pk)
        if post.deleted_at is not None:
            return post
        if post.state == PostState.PUBLISHED:
            _unpublished_bookkeeping(post)
            events.post_event(post, "removed")
        post.deleted_at = timezone.now()
        post.save(update_fields=["deleted_at"])
        post_withdrawn(post=post)
    return post


# --- state changes made by the moderation pipeline and moderators --------------------
def _published_bookkeeping(post: Post, *, now: dt.datetime) -> None:
    events.post_event(post, "published")
    thread = post.thread
    if not post.is_first and thread.author_id != post.author_id:
        notification_create(
            user_id=thread.author_id,
            kind="reply",
            data={"thread_id": thread.id, "post_id": post.id, "title": thread.title},
        )
    # The thread row is every reply's hot spot: its lock is held from this UPDATE to the
    # commit, so callers do it last (a busy thread's posts queue on it, not on their inserts).
    Thread.objects.filter(pk=post.thread_id).update(published_count=F("published_count") + 1, last_activity_at=now)


def _unpublished_bookkeeping(post: Post) -> None:
    Thread.objects.filter(pk=post.thread_id, published_count__gt=0).update(published_count=F("published_count") - 1)


def post_publish(*, post: Post, body: str | None = None) -> Post:
    """Publish (optionally with a moderator's redacted body). Must run in a transaction
    holding the post row; idempotent for an already published post."""
    fields = []
    if body is not None and body != post.body:
        post.body = body
        fields.append("body")
    if post.state == PostState.PUBLISHED:
        if fields:
            post.save(update_fields=fields)
            events.post_event(post, "updated")
        return post
    now = timezone.now()
    post.state = PostState.PUBLISHED
    post.published_at = now
    post.save(update_fields=[*fields, "state", "published_at"])
    if post.deleted_at is None:
        _published_bookkeeping(post, now=now)
    return post


def post_hold(*, post: Post) -> Post:
    """Take a post out of public view until a moderator decides (risk, watched word, reports)."""
    if post.state == PostState.HELD:
        return post
    if post.state == PostState.PUBLISHED and post.deleted_at is None:
        _unpublished_bookkeeping(post)
        events.post_event(post, "removed")
    post.state = PostState.HELD
    post.save(update_fields=["state"])
    return post


def post_reject(*, post: Post, reason: str, message: str) -> Post:
    if post.state == PostState.PUBLISHED and post.deleted_at is None:
        _unpublished_bookkeeping(post)
        events.post_event(post, "removed")
    post.state = PostState.REJECTED
    post.reject_reason = reason
    post.reject_message = message
    post.save(update_fields=["state", "reject_reason", "reject_message"])
    return post


# --- reactions --------------------------------------------------------------------------
def reaction_add(*, user: User, post: Post, kind: str) -> bool:
    """Idempotent; returns True if the reaction is new."""
    from moderation.services import posting_check

    if kind not in ReactionKind.values:
        raise InvalidReaction()
    if not post.is_visible_publicly:
        raise PostNotPublished()
    posting_check(user=user)
    try:
        with transaction.atomic():
            Reaction.objects.create(post=post, user=user, kind=kind)
    except IntegrityError:
        return False
    _reactions_changed(post)
    return True


def reaction_remove(*, user: User, post: Post, kind: str) -> bool:
    if kind not in ReactionKind.values:
        raise InvalidReaction()
    deleted, _ = Reaction.objects.filter(post=post, user=user, kind=kind).delete()
    if deleted:
        _reactions_changed(post)
    return bool(deleted)


def _reactions_changed(post: Post) -> None:
    from .selectors import reaction_summary

    summary = reaction_summary(posts=[post], user=post.author)[post.id]
    counts = {k: summary["counts"].get(k, 0) for k in ReactionKind.values}
    events.reactions_event(post, counts)


# --- notifications ----------------------------------------------------------------------
def notification_create(*, user_id: int, kind: str, data: dict[str, Any]) -> Notification:
    notification = Notification.objects.create(user_id=user_id, kind=kind, data=data)
    events.notification_pushed(notification)
    return notification


def notifications_mark_read(*, user: User, ids: list[int] | None = None) -> int:
    qs = Notification.objects.filter(user=user, read_at=None)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())
