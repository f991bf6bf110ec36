"""The model layer's worker claims assessments from the outbox (PostgreSQL, real):
rows another worker holds are skipped, and a worker that fell behind tops its batch up
with other pending assessments and runs them in one pass."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace

import pytest
from django.db import connection, transaction
from django.utils import timezone

from triage.models import Assessment, ModelState

pytestmark = [pytest.mark.real, pytest.mark.django_db(transaction=True)]


def _pending(make_user, n: int, *, first_source: int = 9000) -> list[Assessment]:
    author = make_user()
    now = timezone.now()
    return [
        Assessment.objects.create(source_type="chat_message", source_id=first_source + i, author=author,
                                  model_dispatched_at=now)
        for i in range(n)
    ]


def _texts(text: str):
    """A stand-in for triage.services.source_texts: every source reads `text`."""
    return lambda *, source_type, source_ids: dict.fromkeys(source_ids, text)


@pytest.fixture
def model_runs(monkeypatch):
    from triage import engine

    runs: list[int] = []

    def fake_full(texts):
        runs.append(len(texts))
        return [replace(engine.assess_inline(t)) for t in texts]

    monkeypatch.setattr(engine, "assess_full", fake_full)
    monkeypatch.setattr("triage.services.source_texts", _texts("hello"))
    return runs


def test_a_batch_is_topped_up_from_the_outbox(make_user, model_runs):
    from triage.reassess import assessments_apply_model

    rows = _pending(make_user, 5)
    done = assessments_apply_model(assessment_ids=[rows[0].id], top_up=3)
    assert model_runs == [4]  # its own id and three more, in one pass
    assert sorted(done) == sorted(r.id for r in rows[:4])
    states = dict(Assessment.objects.values_list("id", "model_state"))
    assert [states[r.id] for r in rows] == [ModelState.DONE] * 4 + [ModelState.PENDING]
    assert assessments_apply_model(assessment_ids=[rows[1].id]) == []  # its own task: already done


def test_rows_held_by_another_worker_are_skipped(make_user, model_runs):
    from triage.reassess import assessments_apply_model

    rows = _pending(make_user, 2)
    held, release = threading.Event(), threading.Event()

    def other_worker():
        try:
            with transaction.atomic():
                Assessment.objects.select_for_update().get(pk=rows[0].id)
                held.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(10)
        done = assessments_apply_model(assessment_ids=[rows[0].id, rows[1].id], top_up=5)
    finally:
        release.set()
        thread.join()
    assert done == [rows[1].id]
    assert Assessment.objects.get(pk=rows[0].id).model_state == ModelState.PENDING


def test_the_model_runs_outside_any_transaction_on_claimed_rows(make_user, monkeypatch):
    """No lock is held while the model computes: the rows are `running` (claimed, committed),
    so another worker's claim skips them without waiting on a lock."""
    from triage import engine
    from triage.reassess import assessments_apply_model

    rows = _pending(make_user, 2)
    seen = {}

    def fake_full(texts):
        seen["in_transaction"] = connection.in_atomic_block
        seen["states"] = set(Assessment.objects.filter(pk__in=[r.id for r in rows]).values_list("model_state", flat=True))
        seen["other_worker_got"] = assessments_apply_model(assessment_ids=[rows[0].id], top_up=5)
        return [engine.assess_inline(t) for t in texts]

    monkeypatch.setattr(engine, "assess_full", fake_full)
    monkeypatch.setattr("triage.services.source_texts", _texts("hello"))
    done = assessments_apply_model(assessment_ids=[rows[0].id, rows[1].id])
    assert seen == {"in_transaction": False, "states": {ModelState.RUNNING}, "other_worker_got": []}
    assert sorted(done) == sorted(r.id for r in rows)
    assert set(Assessment.objects.values_list("model_state", flat=True)) == {ModelState.DONE}


def test_an_abandoned_claim_goes_back_to_the_outbox_and_its_late_results_are_dropped(make_user, monkeypatch, settings):
    """A worker that dies (or stalls past the lease) between claim and apply: the sweeper
    hands its claims back after CLAIM_LEASE_S, counting an attempt, and re-dispatches them;
    if the stalled run finishes after all, its results are not written over the new run's."""
    import datetime as dt

    from triage import engine, reassess

    settings.TRIAGE_MODEL_DISPATCH = True
    rows = _pending(make_user, 2)
    redriven: list[list[int]] = []
    monkeypatch.setattr("triage.services.model_dispatch", lambda ids: redriven.append(sorted(ids)))
    monkeypatch.setattr("triage.services.source_texts", _texts("hello"))

    def stalled_full(texts):
        # While this run "stalls", its lease runs out and the sweeper takes the rows back...
        later = timezone.now() + dt.timedelta(seconds=reassess.CLAIM_LEASE_S + 1)
        assert reassess.model_outbox_sweep(now=later) == 2
        # ...and another worker claims and finishes them.
        monkeypatch.setattr(engine, "assess_full", lambda t: [engine.assess_inline(x) for x in t])
        assert sorted(reassess.assessments_apply_model(assessment_ids=[r.id for r in rows])) == sorted(r.id for r in rows)
        raise RuntimeError("stalled run fails late")  # would mark them failed, were they still its own

    monkeypatch.setattr(engine, "assess_full", stalled_full)
    reassess.assessments_apply_model(assessment_ids=[r.id for r in rows])
    assert redriven == [sorted(r.id for r in rows)]
    stored = list(Assessment.objects.filter(pk__in=[r.id for r in rows]).values_list("model_state", "model_attempts", "action"))
    assert stored == [(ModelState.DONE, 1, "allow")] * 2

    # A fresh claim is a live run's: the sweeper leaves it alone.
    fresh = _pending(make_user, 1, first_source=9100)[0]
    reassess._claim([fresh.id], top_up=0, token=uuid.uuid4())
    assert reassess.model_outbox_sweep(now=timezone.now() + dt.timedelta(seconds=60)) == 0
    assert Assessment.objects.get(pk=fresh.id).model_state == ModelState.RUNNING


def test_a_source_type_without_a_bulk_loader_is_read_one_by_one(make_user, settings):
    """source_texts falls back to the per-source loader; a source that is gone is absent,
    and the model layer then marks its assessment failed (review), never "no risk"."""
    from chat.models import Conversation, Message
    from triage.reassess import assessments_apply_model
    from triage.services import source_texts

    settings.TRIAGE_SOURCE_TEXT_LOADERS = {}
    author = make_user()
    conversation = Conversation.objects.create()
    message = Message.objects.create(conversation=conversation, seq=1, sender=author, client_msg_id=uuid.uuid4(),
                                     body="hello there")
    assert source_texts(source_type="chat_message", source_ids=[message.id, 10**9]) == {message.id: "hello there"}
    gone = Assessment.objects.create(source_type="chat_message", source_id=10**9, author=author,
                                     model_dispatched_at=timezone.now())
    assert assessments_apply_model(assessment_ids=[gone.id]) == [gone.id]
    gone.refresh_from_db()
    assert gone.model_state == ModelState.FAILED and gone.action == "review"
