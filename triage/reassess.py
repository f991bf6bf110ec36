"""The asynchronous model layer applied to stored assessments (Celery, `triage` queue).

It may raise a level and open an escalation the inline layer missed; it never lowers
one. If it fails, the assessment is marked `failed` and its action becomes at least
`review`: failure is never "no risk".
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from .models import Assessment, Escalation, ModelState

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
STUCK_AFTER_S = 30


def assessment_apply_model(*, assessment_id: int) -> None:
    from .engine import action_rank, assess_full, level_rank, max_level
    from .services import ESCALATE_LEVELS, escalation_open, source_load

    assessment = Assessment.objects.filter(pk=assessment_id).first()
    if assessment is None or assessment.model_state == ModelState.DONE:
        return  # idempotent: a second delivery finds the work done
    info = source_load(source_type=assessment.source_type, source_id=assessment.source_id)
    try:
        result = assess_full([info.text])[0]
        failed = bool(result.model_failed)
    except Exception:
        logger.exception("model layer failed for assessment %s", assessment_id)
        result, failed = None, True
    with transaction.atomic():
        assessment = Assessment.objects.select_for_update().get(pk=assessment_id)
        if assessment.model_state == ModelState.DONE:
            return
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
        if failed:
            assessment.model_state = ModelState.FAILED
            if action_rank(assessment.action) < action_rank("review"):
                assessment.action = "review"
        else:
            assessment.model_state = ModelState.DONE
        assessment.model_done_at = timezone.now()
        assessment.save()
        if assessment.level in ESCALATE_LEVELS or assessment.action == "escalate":
            existing = Escalation.objects.select_for_update().filter(
                source_type=assessment.source_type, source_id=assessment.source_id
            ).first()
            if existing is None:
                escalation_open(assessment=assessment, excerpt=info.text, raised_by_model=True)
            else:
                from .escalations import escalation_raise

                escalation_raise(escalation=existing, level=assessment.level, categories=assessment.categories, evidence=assessment.evidence)


def model_outbox_sweep(*, now: dt.datetime | None = None) -> int:
    """Re-dispatch assessments whose model run never finished (lost task, dead worker);
    after MAX_ATTEMPTS they are marked failed and routed to a person."""
    from django.conf import settings

    from .services import _dispatch_model

    if not settings.TRIAGE_MODEL_DISPATCH:
        return 0  # the model layer is switched off: nothing was dispatched, nothing is stuck
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=STUCK_AFTER_S)
    count = 0
    with transaction.atomic():
        stuck = list(
            Assessment.objects.select_for_update(skip_locked=True)
            .filter(model_state=ModelState.PENDING, created_at__lte=cutoff)
            .exclude(model_dispatched_at__gt=cutoff)[:200]
        )
        for assessment in stuck:
            if assessment.model_attempts >= MAX_ATTEMPTS:
                assessment.model_state = ModelState.FAILED
                if assessment.action == "allow":
                    assessment.action = "review"
                assessment.save(update_fields=["model_state", "action", "updated_at"])
                continue
            Assessment.objects.filter(pk=assessment.pk).update(model_attempts=assessment.model_attempts + 1)
            transaction.on_commit(lambda pk=assessment.pk: _dispatch_model(pk))
            count += 1
    return count
