"""Celery application. Settings come from Django settings prefixed CELERY_.

Periodic tasks (sweepers, deadline checks) are declared next to their app in
`<app>/schedule.py` as `BEAT_SCHEDULE = {...}` and merged here, so apps own them.
"""

import importlib
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("earlyhelp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

SCHEDULE_MODULES = ("chat.schedule", "triage.schedule", "forums.schedule", "moderation.schedule")


def _collect_beat_schedule() -> dict:
    schedule: dict = {}
    for name in SCHEDULE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        schedule.update(getattr(module, "BEAT_SCHEDULE", {}))
    return schedule


app.conf.beat_schedule = _collect_beat_schedule()
