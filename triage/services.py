"""Recording assessments and opening escalations. Called by chat and forums services.

Contract for callers: call `assessment_record` *inside* the transaction that stores
the message or post. It stores the inline assessment and, when the inline layer says
`escalate`, the escalation row, in that same transaction — so a stored message with a
crisis in it always has its escalation, and a rolled-back message has neither.
The asynchronous model layer is dispatched after commit, with a sweeper behind it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from config.sql import Link, Statement, sql_insert

from .models import Assessment, Escalation, EscalationAudit, ModelState

logger = logging.getLogger(__name__)

ESCALATE_LEVELS = ("high", "imminent")


@dataclass(frozen=True)
class SourceInfo:
    """What a source app tells triage about one of its rows (see TRIAGE_SOURCE_LOADERS)."""

    text: str
    author_id: int
    conversation_id: int | None = None
    thread_id: int | None = None
    # The last few messages/posts before it, oldest first: [{"sender", "role", "body", "sent_at"}].
    context: list[dict[str, Any]] = field(default_factory=list)


def source_load(*, source_type: str, source_id: int, context: bool = True) -> SourceInfo:
    """A loader is `loader(source_id, *, context=True)`; context=False: the caller reads only
    the text (the model layer), so the loader skips the query for the posts before it."""
    loaders = getattr(settings, "TRIAGE_SOURCE_LOADERS", {})
    return import_string(loaders[source_type])(source_id, context=context)


def source_texts(*, source_type: str, source_ids: list[int]) -> dict[int, str]:
    """The texts of many sources of one type, for the model layer (which reads only the
    text): one query where the source app has a bulk loader (TRIAGE_SOURCE_TEXT_LOADERS,
    `loader(ids) -> {id: text}`), else one source_load per id. A source that is gone is
    absent from the result."""
    bulk = getattr(settings, "TRIAGE_SOURCE_TEXT_LOADERS", {}).get(source_type)
    if bulk:
        return import_string(bulk)(list(source_ids))
    out: dict[int, str] = {}
    for source_id in source_ids:
        with contextlib.suppress(ObjectDoesNotExist):
            out[source_id] = source_load(source_type=source_type, source_id=source_id, context=False).text
    return out


def step_seconds(level: str) -> int:
    """Seconds to acknowledge an escalation of `level` (also each later step of the chain)."""
    return settings.ESCALATION_ACK_SECONDS.get(level, settings.ESCALATION_ACK_SECONDS["high"])


def ack_deadline_for(level: str, now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=step_seconds(level))


def _fields_from(result: Any) -> dict[str, Any]:
    data = result.to_dict()
    risk = data["risk"]
    return {
        "level": risk["level"],
        "score": risk["score"],
        "categories": risk["categories"],
        "flags": risk["flags"],
        "evidence": risk["evidence"],
        "toxicity": data.get("toxicity"),
        "pii": data.get("pii") or [],
        "action": data["action"],
        "versions": data.get("versions") or {},
    }


@dataclass(frozen=True)
class TriageUnavailable:
    """Stand-in result when the inline engine fails: the source is still stored (never
    lost) and goes to a person for review. Failure is never "no risk" (reliability.md)."""

    level: str = "moderate"  # as the engine's results have it, for callers that read only the level

    def to_dict(self) -> dict[str, Any]:
        return {
            "risk": {"level": self.level, "score": 0.45, "categories": [], "flags": {"inline_failed": True}, "evidence": []},
            "toxicity": None,
            "pii": [],
            "action": "review",
            "versions": {"engine": "unavailable"},
        }


def assessment_inline(text: str) -> Any:
    """The inline layer's verdict. Pure CPU, no database: callers run it before they open
    their transaction, so the transaction stays short and needs no savepoint for it."""
    from .engine import assess_inline

    try:
        return assess_inline(text)
    except Exception:
        logger.exception("inline triage failed; routing to review")
        return TriageUnavailable()


def assessment_record(
    *,
    source_type: str,
    source_id: int,
    author_id: int,
    text: str,
    conversation_id: int | None = None,
    thread_id: int | None = None,
    result: Any | None = None,
    inline_result: Any | None = None,
    new_source: bool = False,
    link: Link | None = None,
    before: list[Statement] | None = None,
    reserved_id: int | None = None,
    last: bool = False,
) -> Assessment:
    """Store the assessment of one source and open an escalation if it says so. Must run
    inside the caller's transaction. Returns the stored Assessment.

    `result`: a full result (model layer included, nothing left to run). `inline_result`:
    the inline layer's result the caller already computed (`assessment_inline`); the model
    layer is still to run. Neither: the inline layer runs here. Idempotent per source
    unless `new_source` says the caller created the source in this very transaction (so
    no assessment can exist yet and the lookup is skipped: the chat hot path). `link`: a
    row whose column should point at the new assessment, set in the same statement
    (config.sql.sql_insert; the chat message's assessment_id). `before`: the caller's
    statements to run first in the same round trip, and `reserved_id`: the id the caller
    reserved for this assessment (config.sql.reserve_id_sql; the chat path stores the
    message, already pointing at this id, in the same round trip). `last`: the caller
    writes nothing after this in its transaction, so where no escalation is to be opened
    here either, the COMMIT travels with the INSERT (config.sql.execute_closing)."""
    if not new_source:
        existing = Assessment.objects.filter(source_type=source_type, source_id=source_id).first()
        if existing is not None:
            return existing
    full = result is not None
    if result is None:
        result = inline_result if inline_result is not None else assessment_inline(text)
    row = assessment_row(source_type=source_type, source_id=source_id, author_id=author_id,
                         conversation_id=conversation_id, thread_id=thread_id, result=result, full=full)
    # sql_insert: the same row as Assessment.objects.create, without the ORM's per-call
    # compiling and signals (once per chat message; docs/benchmarks.md).
    assessment = sql_insert(
        Assessment,
        link=link,
        before=before,
        **({"id": reserved_id} if reserved_id is not None else {}),
        last=last and not assessment_escalates(row),
        **row,
    )
    if assessment_escalates(row):
        escalation_open(assessment=assessment, excerpt=text, raised_by_model=False)
    if row["model_dispatched_at"] is not None:
        transaction.on_commit(lambda: model_dispatch([assessment.id]))
    return assessment


def assessment_row(*, source_type: str, source_id: int, author_id: int, conversation_id: int | None,
                   thread_id: int | None, result: Any, full: bool) -> dict[str, Any]:
    """The Assessment row assessment_record stores for `result` (by attname, no id).
    `full`: the result includes the model layer; otherwise the model layer is still to run
    and, where it is dispatched, the row is stamped as dispatched."""
    now = timezone.now()
    dispatch = not full and settings.TRIAGE_MODEL_DISPATCH
    return {
        "source_type": source_type,
        "source_id": source_id,
        "author_id": author_id,
        "conversation_id": conversation_id,
        "thread_id": thread_id,
        "model_state": ModelState.DONE if full else ModelState.PENDING,
        "model_done_at": now if full else None,
        # Stamped in the same INSERT rather than by an UPDATE at dispatch time: the
        # sweeper treats it as "dispatch requested" and re-drives it if no result comes.
        "model_dispatched_at": now if dispatch else None,
        **_fields_from(result),
    }


def assessment_escalates(fields: dict[str, Any]) -> bool:
    """Whether an assessment with these fields (assessment_row) opens an escalation."""
    return fields["action"] == "escalate" or fields["level"] in ESCALATE_LEVELS


def model_dispatch(assessment_ids: list[int]) -> None:
    """Hand assessments to the model layer (Celery `triage` queue). Outside eager mode the
    ids are coalesced per process for a few milliseconds into one batch task: one broker
    publish instead of one per message on the request path, and the worker runs the model
    on the batch at once (several times faster per message than one by one). Ids still
    in the coalescer when a process dies are re-driven by the outbox sweeper."""
    from . import dispatch

    dispatch.submit(assessment_ids)


def escalation_open(*, assessment: Assessment, excerpt: str, raised_by_model: bool) -> Escalation:
    """Create the escalation for an assessment's source (idempotent) and queue its
    notification after commit. The row exists before any notification is attempted."""
    now = timezone.now()
    deadline = ack_deadline_for(assessment.level, now)
    escalation, created = Escalation.objects.get_or_create(
        source_type=assessment.source_type,
        source_id=assessment.source_id,
        defaults={
            "assessment": assessment,
            "young_person_id": assessment.author_id,
            "conversation_id": assessment.conversation_id,
            "thread_id": assessment.thread_id,
            "level": assessment.level if assessment.level in ESCALATE_LEVELS else "high",
            "categories": assessment.categories,
            "evidence": assessment.evidence,
            "excerpt": excerpt[:4000],
            "ack_deadline": deadline,
            "next_step_at": deadline,
            "raised_by_model": raised_by_model,
        },
    )
    if created:
        EscalationAudit.objects.create(
            escalation=escalation, action="created", detail={"level": escalation.level, "by_model": raised_by_model}
        )
        from . import escalations

        escalations.escalation_created_hooks(escalation)
    return escalation
