"""Periodic tasks of triage (merged into Celery beat by config/celery.py)."""

BEAT_SCHEDULE = {
    # Deadline chain and redelivery of escalation notifications (crisis queue).
    "escalation-sweep": {"task": "escalation.sweep", "schedule": 2.0, "options": {"expires": 2}},
    # Re-dispatch assessments whose model-layer run never finished.
    "triage-model-outbox": {"task": "triage.sweep_model_outbox", "schedule": 10.0, "options": {"expires": 10}},
}
