"""The asynchronous model layer applied to stored assessments (Celery, `triage` queue).

It may raise a level and open an escalation the inline layer missed; it never lowers
one. If it fails, the assessment is marked `failed` and its action becomes at least
`review`: failure is never "no risk".
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Assessment, Escalation, ModelState

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
STUCK_AFTER_S = 30
CLAIM_LEASE_S = 120  # > assessment_model_batch's hard time limit (90 s): a live run never loses its claim


def assessment_apply_model(*, assessment_id: int) -> None:
    assessments_apply_model(assessment_ids=[assessment_id])


def assessments_apply_model(*, assessment_ids: list[int], top_up: int = 0) -> list[int]:
    """Run the model layer on a batch of assessments (one forward pass for all texts) and
    apply the results; returns the ids it did. Idempotent: a second delivery finds the
    work done (or claimed) and does nothing.

    Three steps, so no transaction (and no row lock) is held while the model runs, which
    takes from milliseconds to seconds of CPU on a worker that runs at low priority:
    1. claim: FOR UPDATE SKIP LOCKED, then state `running` with this run's token, commit.
       Two workers never claim the same assessment. `top_up`: also claim up to that many
       other dispatched, still pending assessments, oldest first: a worker that fell
       behind drains its backlog in full batches instead of one coalesced task at a time
       (the model costs several times less per text in a batch than alone), and the
       queued tasks for ids it took find them claimed or done.
    2. load the texts and run the model, outside any transaction.
    3. apply: lock the rows again and write only those still claimed by this token.
    A worker that dies between 1 and 3 leaves its claims `running`; once older than
    CLAIM_LEASE_S (longer than the task's hard time limit) the outbox sweeper hands them
    back to the outbox and re-dispatches them, counting an attempt."""
    from .engine import assess_full

    token = uuid.uuid4()
    claimed = _claim(assessment_ids, top_up=top_up, token=token)
    if not claimed:
        return []
    texts = _texts_load(claimed)
    loaded = [pk for pk, text in texts.items() if text is not None]
    results: dict[int, object] = {}
    if loaded:
        try:
            results = dict(zip(loaded, assess_full([texts[pk] for pk in loaded]), strict=True))
        except Exception:
            logger.exception("model layer failed for assessments %s", loaded)
    with transaction.atomic():
        # Still ours: not handed back by the sweeper (lease expired) and re-claimed since.
        mine = list(Assessment.objects.select_for_update()
                    .filter(pk__in=list(texts), model_state=ModelState.RUNNING, model_claim=token)
                    .order_by("pk"))
        now = timezone.now()
        for assessment in mine:
            _model_merge(assessment, result=results.get(assessment.pk), now=now)
        # One UPDATE for the batch, then the (rare) escalations, which read the rows.
        Assessment.objects.bulk_update(mine, _APPLIED_FIELDS)
        for assessment in mine:
            _escalation_apply(assessment, excerpt=texts[assessment.pk] or "")
    return [a.pk for a in claimed]


def _texts_load(claimed: list[Assessment]) -> dict[int, str | None]:
    """{assessment id: its source's text, or None when it could not be read}: one query per
    source type in the batch."""
    from . import services

    by_type: dict[str, list[Assessment]] = {}
    for assessment in claimed:
        by_type.setdefault(assessment.source_type, []).append(assessment)
    texts: dict[int, str | None] = {}
    for source_type, rows in by_type.items():
        try:
            found = services.source_texts(source_type=source_type, source_ids=[a.source_id for a in rows])
        except Exception:
            logger.exception("model layer could not load the sources of assessments %s", [a.pk for a in rows])
            found = {}
        for assessment in rows:
            texts[assessment.pk] = found.get(assessment.source_id)
            if texts[assessment.pk] is None:
                logger.warning("model layer found no source for assessment %s", assessment.pk)
    return texts


def _claim(assessment_ids: list[int], *, top_up: int, token: uuid.UUID) -> list[Assessment]:
    with transaction.atomic():
        claimed = list(
            Assessment.objects.select_for_update(skip_locked=True)
            .filter(pk__in=assessment_ids, model_state=ModelState.PENDING)
            .order_by("pk")
        )
        if top_up > 0:
            claimed += list(
                Assessment.objects.select_for_update(skip_locked=True)
                .filter(model_state=ModelState.PENDING, model_dispatched_at__isnull=False)
                .exclude(pk__in=[a.pk for a in claimed])
                .order_by("pk")[:top_up]
            )
        if claimed:
            Assessment.objects.filter(pk__in=[a.pk for a in claimed]).update(
                model_state=ModelState.RUNNING, model_claim=token, model_claimed_at=timezone.now())
    return claimed


_APPLIED_FIELDS = ["toxicity", "level", "evidence", "score", "categories", "flags", "action", "versions",
                   "model_state", "model_done_at", "updated_at"]


def _model_merge(assessment: Assessment, *, result, now: dt.datetime) -> None:
    """Merge one model result into a claimed (locked) assessment, in memory: the model may
    only raise a level or an action; a failure (no result, or a degraded one) routes to
    review."""
    from .engine import action_rank, level_rank, max_level

    if result is not None:
        data = result.to_dict()
        risk = data["risk"]
        assessment.toxicity = data.get("toxicity")
        new_level = max_level(assessment.level, risk["level"])
        if level_rank(new_level) > level_rank(assessment.level):
            assessment.evidence = assessment.evidence + [e for e in risk["evidence"] if e not in assessment.evidence]
        assessment.level = new_level
        assessment.score = max(assessment.score, risk["score"])
        assessment.categories = sorted(set(assessment.categories) | set(risk["categories"]))
        old_flags = assessment.flags if isinstance(assessment.flags, dict) else {}
        assessment.flags = {k: bool(old_flags.get(k)) or bool(v) for k, v in {**old_flags, **(risk["flags"] or {})}.items()}
        if action_rank(data["action"]) > action_rank(assessment.action):
            assessment.action = data["action"]
        assessment.versions = {**assessment.versions, **(data.get("versions") or {})}
    if result is None or result.model_failed:
        assessment.model_state = ModelState.FAILED
        if action_rank(assessment.action) < action_rank("review"):
            assessment.action = "review"
    else:
        assessment.model_state = ModelState.DONE
    assessment.model_done_at = now
    assessment.updated_at = now  # bulk_update does not apply auto_now


def _escalation_apply(assessment: Assessment, *, excerpt: str) -> None:
    """Open (or raise) the escalation of a stored assessment that now calls for one."""
    from .services import ESCALATE_LEVELS, escalation_open

    if assessment.level in ESCALATE_LEVELS or assessment.action == "escalate":
        existing = Escalation.objects.select_for_update().filter(
            source_type=assessment.source_type, source_id=assessment.source_id
        ).first()
        if existing is None:
            escalation_open(assessment=assessment, excerpt=excerpt, raised_by_model=True)
        else:
            from .escalations import escalation_raise

            escalation_raise(escalation=existing, level=assessment.level, categories=assessment.categories, evidence=assessment.evidence)


def model_outbox_sweep(*, now: dt.datetime | None = None) -> int:
    """Re-dispatch assessments whose model run never finished (lost task, dead worker);
    after MAX_ATTEMPTS they are marked failed and routed to a person."""
    from django.conf import settings

    from .services import model_dispatch

    if not settings.TRIAGE_MODEL_DISPATCH:
        return 0  # the model layer is switched off: nothing was dispatched, nothing is stuck
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=STUCK_AFTER_S)
    redrive: list[int] = []
    with transaction.atomic():
        never_ran = Q(model_state=ModelState.PENDING, created_at__lte=cutoff) & ~Q(model_dispatched_at__gt=cutoff)
        # A claim this old is a dead (or killed) worker's: a live run ends before it.
        abandoned = Q(model_state=ModelState.RUNNING, model_claimed_at__lte=now - dt.timedelta(seconds=CLAIM_LEASE_S))
        stuck = list(Assessment.objects.select_for_update(skip_locked=True).filter(never_ran | abandoned)[:200])
        for assessment in stuck:
            if assessment.model_attempts >= MAX_ATTEMPTS:
                assessment.model_state = ModelState.FAILED
                if assessment.action == "allow":
                    assessment.action = "review"
                assessment.save(update_fields=["model_state", "action", "updated_at"])
                continue
            Assessment.objects.filter(pk=assessment.pk).update(model_attempts=assessment.model_attempts + 1,
                                                               model_dispatched_at=now, model_state=ModelState.PENDING)
            redrive.append(assessment.pk)
        if redrive:
            transaction.on_commit(lambda: model_dispatch(redrive))
    return len(redrive)
