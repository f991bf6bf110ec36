"""One-to-one counselling chat (issue 4).

A `Session` is one request for help: queued, then active with a counsellor, then
ended (or cancelled). It points at exactly one `Conversation`, which owns the
message sequence: transfers keep the conversation, so `seq` never restarts.
`Participant` rows say who may read (any row) and who is live in it (`left_at` null).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Conversation(models.Model):
    # The last assigned seq. Locked (SELECT ... FOR UPDATE) to hand out the next one.
    last_seq = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # Last message, assignment or transfer: what the silence timeout measures.
    last_activity_at = models.DateTimeField(default=timezone.now)


class ParticipantRole(models.TextChoices):
    YOUNG_PERSON = "young_person", "Young person"
    COUNSELLOR = "counsellor", "Counsellor"
    SUPERVISOR = "supervisor", "Supervisor"
    # A supervisor watching live: receives the conversation's events, cannot write.
    OBSERVER = "observer", "Supervisor observing"


class Participant(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="chat_participations")
    role = models.CharField(max_length=16, choices=ParticipantRole.choices)
    joined_at = models.DateTimeField(default=timezone.now)
    # Set when a counsellor transfers out: they keep the transcript, not the live feed.
    left_at = models.DateTimeField(null=True, blank=True)
    last_read_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="chat_participant_unique")]
        indexes = [models.Index(fields=["user", "left_at"])]


class MessageKind(models.TextChoices):
    TEXT = "text", "Text"
    SYSTEM = "system", "System"


class Message(models.Model):
    # No single-column indexes on the two foreign keys: the unique (conversation, seq) and
    # (sender, client_msg_id) indexes and (sender, sent_at) lead with them and serve every
    # lookup by either, and each index more is written by every message stored
    # (docs/benchmarks.md, thirtieth pass).
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False)
    seq = models.PositiveBigIntegerField()
    # Null for system messages (timeouts, transfers, crisis resources).
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                               db_index=False)
    sender_role = models.CharField(max_length=16, blank=True)
    kind = models.CharField(max_length=16, choices=MessageKind.choices, default=MessageKind.TEXT)
    body = models.TextField()
    client_msg_id = models.UUIDField(null=True, blank=True)
    sent_at = models.DateTimeField(default=timezone.now)
    # The inline assessment of a young person's message (staff see it; the author never does).
    assessment = models.ForeignKey("triage.Assessment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="chat_message_seq_unique"),
            # A retried message (same client id) is the same message: the basis of exactly-once.
            models.UniqueConstraint(fields=["sender", "client_msg_id"], name="chat_message_client_id_unique"),
        ]
        # The per-person rate limit counts a sender's recent messages (chat.services.message_send).
        indexes = [models.Index(fields=["sender", "sent_at"], name="chat_message_sender_sent")]
        ordering = ["conversation", "seq"]


class SessionState(models.TextChoices):
    QUEUED = "queued", "Waiting for a counsellor"
    ACTIVE = "active", "With a counsellor"
    ENDED = "ended", "Ended"
    CANCELLED = "cancelled", "Cancelled while waiting"


OPEN_STATES = (SessionState.QUEUED, SessionState.ACTIVE)


class Session(models.Model):
    conversation = models.OneToOneField(Conversation, on_delete=models.PROTECT, related_name="session")
    young_person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="chat_sessions")
    counsellor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="counselled_sessions"
    )
    state = models.CharField(max_length=10, choices=SessionState.choices, default=SessionState.QUEUED)
    topic = models.CharField(max_length=200, blank=True)
    opening_message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Queue order: risk first (triage level rank, 4 = imminent), then waiting time.
    priority = models.PositiveSmallIntegerField(default=0)
    risk_level = models.CharField(max_length=10, default="none")
    assessment = models.ForeignKey("triage.Assessment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outside_hours = models.BooleanField(default=False)
    requested_at = models.DateTimeField(default=timezone.now)
    assigned_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    end_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            # One open request per young person: coming back finds the same place.
            models.UniqueConstraint(
                fields=["young_person"], condition=Q(state__in=["queued", "active"]), name="chat_one_open_session"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "-priority", "requested_at"]),
            models.Index(fields=["counsellor", "state"]),
        ]


class Availability(models.TextChoices):
    AVAILABLE = "available", "Available"
    BUSY = "busy", "Busy"
    AWAY = "away", "Away"


class CounsellorStatus(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_status")
    status = models.CharField(max_length=10, choices=Availability.choices, default=Availability.AWAY)
    capacity = models.PositiveSmallIntegerField(default=3)
    updated_at = models.DateTimeField(default=timezone.now)


class ChatPreference(models.Model):
    """Per-user chat preferences. Young people may stop sharing read receipts."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_preference")
    share_read_receipts = models.BooleanField(default=True)


class Transfer(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="transfers")
    from_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    to_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Staff only: the young person never sees the handover note.
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)


class CaseNote(models.Model):
    """Counsellor-only notes on a session; never visible to the young person."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


class Feedback(models.Model):
    session = models.OneToOneField(Session, on_delete=models.CASCADE, related_name="feedback")
    rating = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)


class TranscriptAccess(models.Model):
    """Append-only audit: every supervisor read of a conversation they are not part of."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="+")
    via = models.CharField(max_length=8)  # "ws" | "rest"
    after_seq = models.PositiveBigIntegerField(default=0)
    accessed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["conversation", "accessed_at"])]
