"""Stored assessments and crisis escalations.

A source (chat message, forum post, session request) is referenced by
(source_type, source_id) rather than a foreign key, so triage does not depend on the
apps it serves; both tables are unique per source, which makes every retry harmless.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class SourceType(models.TextChoices):
    CHAT_MESSAGE = "chat_message", "Chat message"
    FORUM_POST = "forum_post", "Forum post"
    SESSION_REQUEST = "session_request", "Session request"


class ModelState(models.TextChoices):
    PENDING = "pending", "Waiting for the model layer"
    RUNNING = "running", "Claimed by a model-layer worker"
    DONE = "done", "Model layer done"
    FAILED = "failed", "Model layer failed: routed to a person"


class Assessment(models.Model):
    source_type = models.CharField(max_length=24, choices=SourceType.choices)
    source_id = models.BigIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    conversation_id = models.BigIntegerField(null=True, blank=True)
    thread_id = models.BigIntegerField(null=True, blank=True)
    level = models.CharField(max_length=10, default="none")
    score = models.FloatField(default=0.0)
    categories = models.JSONField(default=list)
    flags = models.JSONField(default=dict)
    evidence = models.JSONField(default=list)
    toxicity = models.JSONField(null=True, blank=True)
    pii = models.JSONField(default=list)
    action = models.CharField(max_length=10, default="allow")
    versions = models.JSONField(default=dict)
    # Outbox for the asynchronous model layer: a sweeper re-dispatches what is stuck.
    model_state = models.CharField(max_length=8, choices=ModelState.choices, default=ModelState.PENDING)
    model_attempts = models.PositiveSmallIntegerField(default=0)
    model_dispatched_at = models.DateTimeField(null=True, blank=True)
    # A worker's claim (state running): it runs the model outside any transaction and
    # applies its results only while the claim is still its own. A claim older than
    # reassess.CLAIM_LEASE_S is a dead worker's; the sweeper hands it back to the outbox.
    model_claim = models.UUIDField(null=True, blank=True)
    model_claimed_at = models.DateTimeField(null=True, blank=True)
    model_done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source_type", "source_id"], name="assessment_unique_source")]
        indexes = [models.Index(fields=["model_state", "model_dispatched_at"])]

    def risk_payload(self) -> dict:
        """What staff see next to a message: level, categories and the evidence spans."""
        return {
            "level": self.level,
            "score": self.score,
            "categories": self.categories,
            "flags": self.flags,
            "evidence": self.evidence,
            "action": self.action,
        }


class EscalationState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class Outcome(models.TextChoices):
    SAFETY_PLAN = "safety_plan", "Safety plan agreed"
    EMERGENCY_SERVICES = "emergency_services_contacted", "Emergency services contacted"
    SAFEGUARDING_REFERRAL = "safeguarding_referral", "Safeguarding referral made"
    COUNSELLOR_FOLLOW_UP = "counsellor_follow_up", "Counsellor follow-up arranged"
    NO_RISK_ON_REVIEW = "no_risk_on_review", "No risk on review"
    LOST_CONTACT = "lost_contact", "Lost contact"


class Escalation(models.Model):
    source_type = models.CharField(max_length=24, choices=SourceType.choices)
    source_id = models.BigIntegerField()
    assessment = models.ForeignKey(Assessment, on_delete=models.PROTECT, related_name="escalations")
    young_person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="escalations")
    conversation_id = models.BigIntegerField(null=True, blank=True)
    thread_id = models.BigIntegerField(null=True, blank=True)
    level = models.CharField(max_length=10)
    categories = models.JSONField(default=list)
    evidence = models.JSONField(default=list)
    # The triggering text, for the clinician; the source row remains the record.
    excerpt = models.TextField(blank=True)
    state = models.CharField(max_length=13, choices=EscalationState.choices, default=EscalationState.OPEN)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="owned_escalations"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Deadline chain (enforced by a periodic task; no ETA tasks): step 0 = primary
    # notified, 1 = primary re-notified, 2 = backups notified, 3 = manager notified.
    ack_deadline = models.DateTimeField()
    step = models.PositiveSmallIntegerField(default=0)
    next_step_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    # Set when a clinician's client confirms receipt (`escalation.received`) or acts on it.
    # Until then the sweeper keeps re-sending: a push into a group that lost its members
    # (Redis restart) "succeeds" without reaching anyone.
    delivered_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=32, choices=Outcome.choices, blank=True)
    outcome_note = models.TextField(blank=True)
    raised_by_model = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source_type", "source_id"], name="escalation_unique_source")]
        indexes = [models.Index(fields=["state", "next_step_at"])]


class EscalationAudit(models.Model):
    """Append-only: every state change, notification and view, with actor and time."""

    escalation = models.ForeignKey(Escalation, on_delete=models.PROTECT, related_name="audit")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32)
    detail = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
