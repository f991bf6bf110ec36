"""Celery tasks of the triage app. Tasks take ids and are idempotent."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="triage.assessment_model_run", acks_late=True, max_retries=3, soft_time_limit=20, time_limit=30)
def assessment_model_run(assessment_id: int) -> None:
    from .reassess import assessment_apply_model

    assessment_apply_model(assessment_id=assessment_id)
