"""Celery tasks of the triage app. Tasks take ids, are idempotent and have time limits."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

# Model-layer tasks: redelivered if a worker dies mid-task, retried on database errors.
_MODEL_TASK = {"acks_late": True, "autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 3}


@shared_task(name="triage.assessment_model_run", soft_time_limit=20, time_limit=30, **_MODEL_TASK)
def assessment_model_run(assessment_id: int) -> None:
    """One assessment (tasks queued before batching existed; kept for them)."""
    from .reassess import assessments_apply_model

    assessments_apply_model(assessment_ids=[assessment_id])


@shared_task(name="triage.assessment_model_batch", soft_time_limit=60, time_limit=90, **_MODEL_TASK)
def assessment_model_batch(assessment_ids: list[int]) -> None:
    """Up to triage.dispatch.BATCH_MAX assessments, the model run on all texts at once,
    topped up from the outbox with other pending ones (reassess.assessments_apply_model)."""
    from django.conf import settings

    from .dispatch import BATCH_MAX
    from .reassess import assessments_apply_model

    # Not in eager mode: there the caller's own transaction and tests decide what runs.
    top_up = 0 if settings.CELERY_TASK_ALWAYS_EAGER else max(0, BATCH_MAX - len(assessment_ids))
    assessments_apply_model(assessment_ids=assessment_ids, top_up=top_up)


@shared_task(name="triage.sweep_model_outbox", soft_time_limit=20, time_limit=30)
def sweep_model_outbox() -> int:
    from .reassess import model_outbox_sweep

    return model_outbox_sweep()


@shared_task(
    name="escalation.sweep", autoretry_for=(OperationalError,), max_retries=2, soft_time_limit=20, time_limit=30
)
def escalation_sweep_task() -> dict:
    from .escalations import escalation_sweep

    return escalation_sweep()


@shared_task(name="escalation.notify", autoretry_for=(OperationalError,), max_retries=3, soft_time_limit=10, time_limit=20)
def escalation_notify_task(escalation_id: int) -> bool:
    from .escalations import escalation_notify

    return escalation_notify(escalation_id=escalation_id, reason="task")
