"""Celery tasks of the chat app: take ids (or nothing), call a service, idempotent."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="chat.sessions_close_silent", acks_late=True, soft_time_limit=50, time_limit=60)
def sessions_close_silent() -> list[int]:
    """Periodic: close silent sessions. Each one is re-checked under its row lock."""
    from .services import sessions_close_silent as close

    return close()


@shared_task(name="chat.session_close_if_silent", acks_late=True, soft_time_limit=20, time_limit=30)
def session_close_if_silent(session_id: int) -> bool:
    from .services import session_close_if_silent as close

    return close(session_id=session_id)


@shared_task(name="chat.queue_positions_push", acks_late=True, soft_time_limit=20, time_limit=30)
def queue_positions_push() -> None:
    """Periodic refresh of positions and estimates (estimates drift as time passes)."""
    from .events import push_queue_changed

    push_queue_changed()
