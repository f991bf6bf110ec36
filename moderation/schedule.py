"""Beat entries for moderation (merged by config/celery.py)."""

BEAT_SCHEDULE = {
    # Posts whose dispatch was lost (broker down, crash between commit and send).
    "moderation.sweep_checks": {"task": "moderation.sweep_checks", "schedule": 5.0},
    # Leases that ran out go back to the live queue.
    "moderation.expire_claims": {"task": "moderation.expire_claims", "schedule": 30.0},
}
