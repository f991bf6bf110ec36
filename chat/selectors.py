"""Reads: message replay, queue order and estimates, triage source loaders."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Avg, F, Q, Sum
from django.utils import timezone

from accounts.models import User
from triage.services import SourceInfo

from .models import (
    OPEN_STATES,
    Availability,
    CounsellorStatus,
    Message,
    Participant,
    Session,
    SessionState,
)

QUEUE_ORDER = ("-priority", "requested_at", "id")
_HANDLING_CACHE_KEY = "chat:avg_handling_s"

logger = logging.getLogger(__name__)


def setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def conversation_participant_ids(conversation_id: int) -> list[int]:
    """Users live in the conversation now (young person and current counsellor).
    Counsellors who transferred out keep the transcript but not the live feed."""
    return list(
        Participant.objects.filter(conversation_id=conversation_id, left_at__isnull=True)
        .exclude(role="observer")
        .order_by("id")
        .values_list("user_id", flat=True)
    )


def participants_live(conversation_id: int) -> list[Participant]:
    """Rows of everyone who receives the conversation's events now (observers included)."""
    return list(Participant.objects.filter(conversation_id=conversation_id, left_at__isnull=True))


def conversations_live_for(*, user_id: int) -> list[int]:
    """Conversations of open sessions (queued or active) the user is live in, observing
    included: those whose messages reach the user's sockets."""
    return list(
        Participant.objects.filter(user_id=user_id, left_at__isnull=True,
                                   conversation__session__state__in=(SessionState.QUEUED, SessionState.ACTIVE))
        .values_list("conversation_id", flat=True)
    )


def message_list_since(*, conversation_id: int, after_seq: int, limit: int) -> list[Message]:
    """Ordered replay from the database: the record, whatever the live pushes did."""
    return list(
        Message.objects.filter(conversation_id=conversation_id, seq__gt=after_seq)
        .select_related("sender", "assessment")
        .order_by("seq")[:limit]
    )


def message_context(*, conversation_id: int, before_seq: int | None, count: int = 5) -> list[dict[str, Any]]:
    qs = Message.objects.filter(conversation_id=conversation_id)
    if before_seq is not None:
        qs = qs.filter(seq__lt=before_seq)
    rows = list(qs.select_related("sender").order_by("-seq")[:count])
    rows.reverse()
    return [
        {
            "sender": m.sender_id,
            "role": m.sender_role or "system",
            "body": m.body,
            "sent_at": m.sent_at.isoformat(),
        }
        for m in rows
    ]


def request_text(*, topic: str, body: str) -> str:
    """What triage reads for a session request: the topic counts too ("suicide")."""
    return "\n".join(part for part in (topic.strip(), body.strip()) if part)


def triage_source_message(source_id: int, *, context: bool = True) -> SourceInfo:
    message = Message.objects.get(pk=source_id)
    return SourceInfo(
        text=message.body,
        author_id=message.sender_id,
        conversation_id=message.conversation_id,
        context=message_context(conversation_id=message.conversation_id, before_seq=message.seq) if context else [],
    )


def triage_source_request(source_id: int, *, context: bool = True) -> SourceInfo:
    """source_id is the Session id (source_type "session_request")."""
    session = Session.objects.select_related("opening_message").get(pk=source_id)
    opening = session.opening_message
    before = opening.seq if opening is not None else None
    return SourceInfo(
        text=request_text(topic=session.topic, body=opening.body if opening else ""),
        author_id=session.young_person_id,
        conversation_id=session.conversation_id,
        context=message_context(conversation_id=session.conversation_id, before_seq=before) if context else [],
    )


def triage_texts_message(source_ids: list[int]) -> dict[int, str]:
    """TRIAGE_SOURCE_TEXT_LOADERS["chat_message"]: what triage_source_message reads as text."""
    return dict(Message.objects.filter(pk__in=source_ids).values_list("pk", "body"))


def triage_texts_request(source_ids: list[int]) -> dict[int, str]:
    """TRIAGE_SOURCE_TEXT_LOADERS["session_request"]: what triage_source_request reads as text."""
    rows = Session.objects.filter(pk__in=source_ids).values_list("pk", "topic", "opening_message__body")
    return {pk: request_text(topic=topic, body=body or "") for pk, topic, body in rows}


def session_open_for(*, young_person_id: int) -> Session | None:
    return Session.objects.filter(young_person_id=young_person_id, state__in=OPEN_STATES).first()


def sessions_for_user(*, user: User, state: str | None = None, everyone: bool = False) -> list[Session]:
    """A young person's own sessions; staff: those they took part in; a supervisor with
    everyone=True: every session (the live overview)."""
    qs = Session.objects.select_related("counsellor", "young_person")
    if not everyone:
        qs = qs.filter(Q(young_person_id=user.id) | Q(conversation__participants__user_id=user.id)).distinct()
    if state:
        qs = qs.filter(state=state)
    return list(qs.order_by("-requested_at")[:200])


def queue_list() -> list[Session]:
    return list(Session.objects.filter(state=SessionState.QUEUED).select_related("young_person").order_by(*QUEUE_ORDER))


def active_session_count(*, counsellor_id: int) -> int:
    return Session.objects.filter(counsellor_id=counsellor_id, state=SessionState.ACTIVE).count()


def counsellor_status_of(*, user_id: int) -> CounsellorStatus | None:
    return CounsellorStatus.objects.filter(user_id=user_id).first()


def available_capacity() -> int:
    """Total session capacity of counsellors marked available."""
    total = CounsellorStatus.objects.filter(status=Availability.AVAILABLE).aggregate(c=Sum("capacity"))["c"]
    return int(total or 0)


def average_handling_s(*, now: dt.datetime | None = None) -> float:
    """Mean duration of the last 100 sessions ended in the past 7 days; the configured
    default when there are none. Cached for a minute: it moves slowly. The cache is an
    optimisation only: with Redis down (a restart) the figure is computed, not refused."""
    try:
        cached = cache.get(_HANDLING_CACHE_KEY)
    except Exception as exc:  # the cache backend's own errors vary (redis-py, memcached, ...)
        logger.warning("queue estimate: cache unavailable (%s); computing", type(exc).__name__)
        cached = None
    if cached is not None:
        return cached
    now = now or timezone.now()
    recent = (
        Session.objects.filter(state=SessionState.ENDED, assigned_at__isnull=False, ended_at__gte=now - dt.timedelta(days=7))
        .order_by("-ended_at")
        .values_list("id", flat=True)[:100]
    )
    avg = (
        Session.objects.filter(id__in=list(recent))
        .annotate(d=F("ended_at") - F("assigned_at"))
        .aggregate(avg=Avg("d"))["avg"]
    )
    value = avg.total_seconds() if avg else float(setting("CHAT_DEFAULT_HANDLING_S", 1200))
    with contextlib.suppress(Exception):  # best effort, as above
        cache.set(_HANDLING_CACHE_KEY, value, 60)
    return value


@dataclass(frozen=True)
class QueueEstimate:
    handling_s: float
    capacity: int

    def eta_s(self, position: int) -> int:
        """Documented estimate (docs/protocol.md): position x average handling time /
        capacity of available counsellors (at least 1, so a closed desk is not 0)."""
        return int(math.ceil(position * self.handling_s / max(1, self.capacity)))


def queue_estimate() -> QueueEstimate:
    return QueueEstimate(handling_s=average_handling_s(), capacity=available_capacity())


def queue_position(*, session: Session) -> int:
    """1-based place in the queue (risk first, then waiting time)."""
    ahead = Session.objects.filter(state=SessionState.QUEUED).filter(
        Q(priority__gt=session.priority)
        | Q(priority=session.priority, requested_at__lt=session.requested_at)
        | Q(priority=session.priority, requested_at=session.requested_at, id__lt=session.id)
    )
    return ahead.count() + 1


def operating_hours_open(*, now: dt.datetime) -> bool:
    """CHAT_OPERATING_HOURS: None (24/7, the default) or {"days": [0..6], "open": "HH:MM",
    "close": "HH:MM"} in the service's local time; close before open spans midnight."""
    hours = setting("CHAT_OPERATING_HOURS", None)
    if not hours:
        return True
    local = timezone.localtime(now)
    opens = dt.time.fromisoformat(hours.get("open", "00:00"))
    closes = dt.time.fromisoformat(hours.get("close", "23:59"))
    days = hours.get("days", list(range(7)))
    t = local.time()
    if opens <= closes:
        return local.weekday() in days and opens <= t < closes
    # Overnight: after opening today, or before closing on the morning after an open day.
    if t >= opens:
        return local.weekday() in days
    return t < closes and (local.weekday() - 1) % 7 in days
