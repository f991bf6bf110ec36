"""Peer-support boards, threads, posts, reactions and notifications (issue 6)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ModerationPolicy(models.TextChoices):
    PRE = "pre", "Every post held for a moderator"
    AUTO = "auto", "Clean posts published, flagged posts held"
    POST = "post", "Published, reviewed after"


class Board(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=80)
    description = models.TextField(blank=True)
    # Pre-moderation is the default, as Kooth and Childline do.
    policy = models.CharField(max_length=8, choices=ModerationPolicy.choices, default=ModerationPolicy.PRE)
    # Age restriction (inclusive); null means open to every age the service accepts.
    min_age = models.PositiveSmallIntegerField(null=True, blank=True)
    max_age = models.PositiveSmallIntegerField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class PostState(models.TextChoices):
    HELD = "held", "Waiting for a moderator"
    PUBLISHED = "published", "Published"
    REJECTED = "rejected", "Rejected"


class Thread(models.Model):
    board = models.ForeignKey(Board, on_delete=models.PROTECT, related_name="threads")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="forum_threads")
    title = models.CharField(max_length=140)
    created_at = models.DateTimeField(default=timezone.now)
    # Bumped when a reply is published, so boards list active threads first.
    last_activity_at = models.DateTimeField(default=timezone.now)
    # Published, undeleted posts: what a young person sees as "n replies + 1".
    published_count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["board", "-last_activity_at"])]


class Post(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.PROTECT, related_name="posts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="forum_posts")
    body = models.TextField()
    is_first = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=PostState.choices, default=PostState.HELD)
    # Each edit is a new revision and is moderated again; moderation rows carry the revision.
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # Soft delete: the row (and anything a moderator or clinician needs) stays.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # What the author is told when a moderator rejects (kind message + stable code).
    reject_reason = models.CharField(max_length=32, blank=True)
    reject_message = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["thread", "state", "id"])]

    @property
    def is_visible_publicly(self) -> bool:
        return self.state == PostState.PUBLISHED and self.deleted_at is None


class ReactionKind(models.TextChoices):
    HUG = "hug", "Hug"
    ME_TOO = "me_too", "Me too"
    HELPFUL = "helpful", "Helpful"


class Reaction(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=ReactionKind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["post", "user", "kind"], name="reaction_unique_per_kind")]


class Notification(models.Model):
    """Stored first, pushed as a hint: a client lists unread ones after reconnecting."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="forum_notifications")
    kind = models.CharField(max_length=24)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "read_at", "-id"])]
