"""Moderation: the pipeline outbox, queue items, reports, sanctions, appeals, audit.

The database is the record (../shared/docs/reliability.md): a post's `PostCheck` row
is written in the transaction that stores the post, and a sweeper re-dispatches any
check not done after a few seconds, so a post is never lost and never published
unchecked from a pre or auto board.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from forums.models import Post


class CheckState(models.TextChoices):
    PENDING = "pending", "Waiting for the pipeline"
    DONE = "done", "Assessed and routed"
    SUPERSEDED = "superseded", "An edit replaced this revision"


class PostCheck(models.Model):
    """Outbox row: one per post revision that the pipeline must assess."""

    post = models.ForeignKey(Post, on_delete=models.PROTECT, related_name="checks")
    revision = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=CheckState.choices, default=CheckState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    # The assessment of this revision (triage stores one Assessment per post; edits live here).
    result = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=24, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["post", "revision"], name="postcheck_unique_revision")]
        indexes = [models.Index(fields=["state", "dispatched_at"])]


class Queue(models.TextChoices):
    CARE = "care", "Care: risk to the young person"
    SANCTION = "sanction", "Sanction: rules, toxicity, spam, personal details"


class ItemState(models.TextChoices):
    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed"
    DECIDED = "decided", "Decided"
    # Closed without a decision: the post was edited (a fresh item follows) or withdrawn.
    CLOSED = "closed", "Closed"


ACTIVE_ITEM_STATES = (ItemState.OPEN, ItemState.CLAIMED)


class QueueItem(models.Model):
    queue = models.CharField(max_length=8, choices=Queue.choices)
    post = models.ForeignKey(Post, on_delete=models.PROTECT, related_name="queue_items")
    revision = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=8, choices=ItemState.choices, default=ItemState.OPEN)
    # Ordering: risk first (0 none .. 4 imminent), then oldest first.
    risk_rank = models.PositiveSmallIntegerField(default=0)
    reasons = models.JSONField(default=list)
    scores = models.JSONField(default=dict)
    evidence = models.JSONField(default=list)
    pii = models.JSONField(default=list)
    redaction_suggestion = models.TextField(blank=True)
    report_count = models.PositiveIntegerField(default=0)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    # Optimistic concurrency: every change bumps it; a decision must name the version it saw.
    version = models.PositiveIntegerField(default=1)
    decision = models.CharField(max_length=16, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # One active item per post and queue: repeated reports and re-assessments merge into it.
            models.UniqueConstraint(
                fields=["post", "queue"], condition=Q(state__in=["open", "claimed"]), name="queueitem_one_active"
            )
        ]
        indexes = [models.Index(fields=["queue", "state", "-risk_rank", "created_at"])]


class ReportReason(models.TextChoices):
    BULLYING = "bullying", "Bullying or harassment"
    HATE = "hate", "Hateful"
    SPAM = "spam", "Spam or advertising"
    PERSONAL_DETAILS = "personal_details", "Shares personal details"
    INAPPROPRIATE = "inappropriate", "Inappropriate content"
    WORRIED = "worried", "I'm worried about this person"
    OTHER = "other", "Something else"


class Report(models.Model):
    post = models.ForeignKey(Post, on_delete=models.PROTECT, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=20, choices=ReportReason.choices)
    note = models.TextField(blank=True)
    item = models.ForeignKey(QueueItem, on_delete=models.PROTECT, related_name="reports")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["post", "reporter"], name="report_once_per_reporter")]


class SanctionKind(models.TextChoices):
    WARNING = "warning", "Warning"
    MUTE = "mute", "Muted (cannot post) for a period"
    SUSPENSION = "suspension", "Suspended from the forums"


class Sanction(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sanctions")
    kind = models.CharField(max_length=10, choices=SanctionKind.choices)
    reason = models.CharField(max_length=32)
    message = models.TextField(blank=True)
    item = models.ForeignKey(QueueItem, null=True, blank=True, on_delete=models.PROTECT, related_name="sanctions")
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)  # null: until lifted (suspension)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at", "ends_at"])]


class AppealState(models.TextChoices):
    PENDING = "pending", "Waiting for review"
    UPHELD = "upheld", "Sanction upheld"
    OVERTURNED = "overturned", "Sanction overturned"


class Appeal(models.Model):
    # OneToOne: a user can appeal a sanction once.
    sanction = models.OneToOneField(Sanction, on_delete=models.PROTECT, related_name="appeal")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    state = models.CharField(max_length=10, choices=AppealState.choices, default=AppealState.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)


class WatchAction(models.TextChoices):
    HOLD = "hold", "Hold the post for a moderator"
    BLOCK = "block", "Refuse the post"
    FLAG = "flag", "Publish per policy, add to the sanction queue"
    REPLACE = "replace", "Replace the words before storing"


class WatchedWord(models.Model):
    phrase = models.CharField(max_length=100)
    action = models.CharField(max_length=8, choices=WatchAction.choices)
    replacement = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("phrase"), condition=Q(is_active=True), name="watchedword_unique_active")
        ]


class AuditEntry(models.Model):
    """Append-only: every decision, sanction, appeal and watched-word change."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32)
    item = models.ForeignKey(QueueItem, null=True, blank=True, on_delete=models.PROTECT, related_name="audit")
    post = models.ForeignKey(Post, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    sanction = models.ForeignKey(Sanction, null=True, blank=True, on_delete=models.PROTECT, related_name="audit")
    appeal = models.ForeignKey(Appeal, null=True, blank=True, on_delete=models.PROTECT, related_name="audit")
    detail = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise RuntimeError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("audit entries are append-only")
