"""Periodic tasks of triage (merged into Celery beat by config/celery.py)."""

BEAT_SCHEDULE = {
    # Deadline chain and redelivery of escalation notifications (crisis queue).
    "escalation-sweep": {"task": "escalation.sweep", "schedule": 5.0, "options": {"expires": 5}},
    # Re-dispatch assessments whose model-layer run never finished.
    "triage-model-outbox": {"task": "triage.sweep_model_outbox", "schedule": 10.0, "options": {"expires": 10}},
}
