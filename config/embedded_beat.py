"""In-process periodic tasks for the embedded (no Redis) mode.

With the in-memory broker there is no `celery beat` process, yet escalation deadlines
and sweepers must still run. When EMBEDDED_BEAT is on (local settings), the ASGI
process runs the beat schedule itself in one daemon thread, calling each task eagerly.
Production runs `celery -A config beat` instead.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger(__name__)
_started = threading.Event()


def _interval(entry: dict) -> float:
    schedule = entry["schedule"]
    seconds = getattr(schedule, "total_seconds", None)
    return float(seconds() if seconds else schedule)


def start() -> None:
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_run, name="embedded-beat", daemon=True).start()


def _run() -> None:
    from django.db import close_old_connections

    from config.celery import app

    app.loader.import_default_modules()  # autodiscovers each app's tasks module
    entries = {name: (entry["task"], _interval(entry)) for name, entry in app.conf.beat_schedule.items()}
    due = dict.fromkeys(entries, 0.0)
    while True:
        now = time.monotonic()
        for name, (task, interval) in entries.items():
            if now < due[name]:
                continue
            due[name] = now + interval
            try:
                app.tasks[task].apply()
            except Exception:
                logger.exception("embedded beat task %s failed", task)
            finally:
                close_old_connections()
        time.sleep(1.0)
