"""Coalesced hand-off of assessments to the model layer (Celery `triage` queue).

The chat hot path used to publish one Celery task per message, synchronously, after its
commit: a broker round trip on the request path, and a worker that then ran the model one
text at a time (~7x slower per message than in a batch of 32). Here, ids are queued
in-process and one daemon thread per process publishes them as one batch task per
WINDOW_S (at most BATCH_MAX ids). Under light load a batch is one id a quarter of a second
later; under heavy load the batching grows with it, and the worker tops its batches up
from the outbox when it falls behind (reassess.assessments_apply_model).

Nothing is lost by this: the assessment row is the outbox (model_state=pending, stamped
model_dispatched_at in its INSERT). Ids still queued when a process dies, or whose publish
fails because the broker is down, are re-driven by `model_outbox_sweep`.

In eager mode (embedded defaults, tests) ids are handed over at once, in the caller's
thread, so behaviour stays deterministic.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)

# 250 ms: the model layer is the second opinion (the inline layer has already escalated
# what it can), so a quarter of a second costs nothing that matters, and batches of
# several texts cost the worker about half the CPU per text of one at a time.
WINDOW_S = 0.25
BATCH_MAX = 32

_queue: queue.SimpleQueue[int] = queue.SimpleQueue()
_owner_pid: int | None = None
_start_lock = threading.Lock()


def submit(assessment_ids: list[int]) -> None:
    if not assessment_ids:
        return
    if settings.CELERY_TASK_ALWAYS_EAGER:
        publish(assessment_ids)
        return
    _ensure_thread()
    for assessment_id in assessment_ids:
        _queue.put(assessment_id)


def publish(assessment_ids: list[int]) -> None:
    from .tasks import assessment_model_batch

    try:
        assessment_model_batch.delay(list(assessment_ids))
    except Exception as exc:  # broker down: the outbox sweeper re-dispatches them
        logger.warning("model-layer dispatch of %d assessments failed: %s", len(assessment_ids), type(exc).__name__)


def _ensure_thread() -> None:
    global _owner_pid, _queue
    pid = os.getpid()
    if _owner_pid == pid:
        return
    with _start_lock:
        if _owner_pid == pid:
            return
        # A forked child (Celery prefork) inherits the flag but not the thread, and maybe
        # a copy of the parent's queued ids: start clean (the sweeper covers those ids).
        _queue = queue.SimpleQueue()
        threading.Thread(target=_run, args=(_queue,), name="triage-dispatch", daemon=True).start()
        _owner_pid = pid


def _run(q: queue.SimpleQueue[int]) -> None:
    while True:
        batch = [q.get()]
        deadline = time.monotonic() + WINDOW_S
        while len(batch) < BATCH_MAX:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(q.get(timeout=remaining))
            except queue.Empty:
                break
        try:
            publish(batch)
        except Exception:  # never let the thread die; the sweeper covers the batch
            logger.exception("model-layer dispatch thread failed")
