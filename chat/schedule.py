"""Periodic chat work, merged into Celery beat by config/celery.py."""

BEAT_SCHEDULE = {
    "chat-close-silent-sessions": {"task": "chat.sessions_close_silent", "schedule": 60.0},
    "chat-queue-positions": {"task": "chat.queue_positions_push", "schedule": 30.0},
}
