"""The model-layer hand-off thread (triage/dispatch.py): every id submitted is published
exactly once, alone after a quiet spell, in batches of at most BATCH_MAX under a burst."""

from __future__ import annotations

import threading
import time

from triage import dispatch


def _published(monkeypatch, settings) -> list[list[int]]:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    batches: list[list[int]] = []
    monkeypatch.setattr(dispatch, "publish", lambda ids: batches.append(list(ids)))
    monkeypatch.setattr(dispatch, "WINDOW_S", 0.05)
    return batches


def _until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the dispatch thread did not publish in time"
        time.sleep(0.01)


def test_a_lone_id_goes_out_alone_after_the_window(monkeypatch, settings):
    batches = _published(monkeypatch, settings)
    dispatch.submit([101])
    _until(lambda: batches)
    time.sleep(0.1)
    assert batches == [[101]]


def test_a_burst_from_several_threads_goes_out_once_coalesced(monkeypatch, settings):
    batches = _published(monkeypatch, settings)
    senders = [threading.Thread(target=lambda base=base: [dispatch.submit([base + i]) for i in range(50)])
               for base in (1000, 2000, 3000, 4000)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    _until(lambda: sum(map(len, batches)) >= 200)
    time.sleep(0.1)
    sent = [i for batch in batches for i in batch]
    assert sorted(sent) == sorted(base + i for base in (1000, 2000, 3000, 4000) for i in range(50))
    assert max(map(len, batches)) <= dispatch.BATCH_MAX and len(batches) < len(sent) / 4  # coalesced


def test_publish_sends_the_ids_with_a_short_repr(monkeypatch):
    """One batch task with the ids as its argument; its monitoring repr is a count, given
    so Celery does not build a safe repr of every id on the server's CPU."""
    from triage.tasks import assessment_model_batch

    calls = []
    monkeypatch.setattr(assessment_model_batch, "apply_async", lambda args, **options: calls.append((args, options)))
    dispatch.publish(iter([7, 8, 9]))
    assert calls == [(([7, 8, 9],), {"argsrepr": "([3 assessment ids],)", "kwargsrepr": "{}"})]
