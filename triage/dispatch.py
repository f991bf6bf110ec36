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

import collections
import logging
import os
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)

# 250 ms: the model layer is the second opinion (the inline layer has already escalated
# what it can), so a quarter of a second costs nothing that matters, and batches of
# several texts cost the worker about half the CPU per text of one at a time.
WINDOW_S = 0.25
BATCH_MAX = 32


class _Outbox:
    """Ids waiting for the publisher thread. The sender wakes the thread only when a batch
    starts or fills, not per id: a wake-up per message (a queue the thread blocks on) cost
    the process 20–57 µs of CPU each, the thread's turn included, in a micro-benchmark
    pinned to one core as the ASGI server is (docs/benchmarks.md, sixteenth pass)."""

    def __init__(self) -> None:
        self.ids: collections.deque[int] = collections.deque()
        self.changed = threading.Condition(threading.Lock())

    def put(self, assessment_ids: list[int]) -> None:
        with self.changed:
            self.ids.extend(assessment_ids)
            n = len(self.ids)
            if n == len(assessment_ids) or n >= BATCH_MAX:
                self.changed.notify()

    def next_batch(self) -> list[int]:
        """Blocks until ids arrive, then for WINDOW_S or until BATCH_MAX are waiting."""
        with self.changed:
            while not self.ids:
                self.changed.wait()
            deadline = time.monotonic() + WINDOW_S
            while len(self.ids) < BATCH_MAX:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.changed.wait(remaining)
            return [self.ids.popleft() for _ in range(min(BATCH_MAX, len(self.ids)))]


_outbox = _Outbox()
_owner_pid: int | None = None
_start_lock = threading.Lock()


def submit(assessment_ids: list[int]) -> None:
    if not assessment_ids:
        return
    if settings.CELERY_TASK_ALWAYS_EAGER:
        publish(assessment_ids)
        return
    _ensure_thread()
    _outbox.put(assessment_ids)


def publish(assessment_ids: list[int]) -> None:
    from .tasks import assessment_model_batch

    ids = list(assessment_ids)
    try:
        # Celery's default argsrepr, a safe repr of the ids made for monitoring, was ~40% of
        # a publish's CPU in this process's own thread (32 ids: 0.74 -> 0.43 ms on Zen 4).
        assessment_model_batch.apply_async((ids,), argsrepr=f"([{len(ids)} assessment ids],)", kwargsrepr="{}")
    except Exception as exc:  # broker down: the outbox sweeper re-dispatches them
        logger.warning("model-layer dispatch of %d assessments failed: %s", len(ids), type(exc).__name__)


def _ensure_thread() -> None:
    global _owner_pid, _outbox
    pid = os.getpid()
    if _owner_pid == pid:
        return
    with _start_lock:
        if _owner_pid == pid:
            return
        # A forked child (Celery prefork) inherits the flag but not the thread, and maybe
        # a copy of the parent's queued ids and a held lock: start clean (the sweeper
        # covers those ids).
        _outbox = _Outbox()
        threading.Thread(target=_run, args=(_outbox,), name="triage-dispatch", daemon=True).start()
        _owner_pid = pid


def _run(outbox: _Outbox) -> None:
    while True:
        batch = outbox.next_batch()
        try:
            publish(batch)
        except Exception:  # never let the thread die; the sweeper covers the batch
            logger.exception("model-layer dispatch thread failed")
