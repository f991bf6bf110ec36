"""Celery application. Settings come from Django settings prefixed CELERY_.

Periodic tasks (sweepers, deadline checks) are declared next to their app in
`<app>/schedule.py` as `BEAT_SCHEDULE = {...}` and merged here, so apps own them.
"""

import importlib
import os

from celery import Celery, signals

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


@signals.worker_process_init.connect
def _preload_triage_model(**_kwargs) -> None:
    """A worker that consumes the `triage` queue loads the model layer when its process
    starts, not on its first task: loading torch and the checkpoint takes seconds of CPU,
    and the first message after a (re)start would wait for it. Other workers skip it."""
    try:
        queues = set(app.amqp.queues.consume_from or ())
    except Exception:  # no queue selection known: load lazily as before
        return
    if "triage" not in queues:
        return
    import logging

    from django.conf import settings

    from triage import model

    # The model layer is background work that can take every cycle a core has left; on a
    # box shared with the ASGI server, PostgreSQL and Redis it must not delay their
    # replies (the chat latency budget is milliseconds, the model layer's is seconds).
    _lower_priority(str(getattr(settings, "TRIAGE_WORKER_NICE", "idle")).strip().lower())

    try:
        model.warm()
    except model.ModelUnavailable as exc:  # the model layer then fails per task: review
        logging.getLogger(__name__).warning("triage model not preloaded: %s", exc)


IDLE_PROCESS_NICE = 10


def _lower_priority(setting: str) -> None:
    """TRIAGE_WORKER_NICE: "idle" (default): the process takes nice 10 and the model's
    forward passes run in a thread under SCHED_IDLE, which computes only on cycles nothing
    else wants and is preempted at once (triage.model.run_in_idle_thread). Under sustained
    overload the model layer then waits: assessments stay pending in the outbox, the sweeper
    re-drives them and after MAX_ATTEMPTS routes them to a person. A number: that niceness
    for the whole process, forward passes included (0 = leave it)."""
    import logging
    import os

    try:
        if setting == "idle":
            os.nice(IDLE_PROCESS_NICE)
            from triage import model

            model.run_in_idle_thread()
        elif int(setting) > 0:
            os.nice(int(setting))
    except (OSError, ValueError, AttributeError) as exc:  # not permitted, not Linux, a typo
        logging.getLogger(__name__).warning("TRIAGE_WORKER_NICE=%r not applied: %s", setting, exc)
