"""Celery tasks of the moderation pipeline (queue `moderation` via CELERY_TASK_ROUTES).

Tasks take ids, call one service and are idempotent: the PostCheck row's state is the
guard, so a redelivery or a sweeper re-dispatch of a done check is a no-op.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(
    name="moderation.assess_post",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=3,
    soft_time_limit=30,
    time_limit=45,
)
def assess_post(post_id: int) -> str:
    from .services import post_assess

    return post_assess(post_id=post_id)


@shared_task(name="moderation.sweep_checks", acks_late=True, soft_time_limit=30, time_limit=45)
def sweep_checks() -> int:
    from .services import checks_sweep

    return checks_sweep()


@shared_task(name="moderation.expire_claims", acks_late=True, soft_time_limit=20, time_limit=30)
def expire_claims() -> int:
    from .services import claims_expire

    return claims_expire()
