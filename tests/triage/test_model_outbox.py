"""The model layer's worker claims assessments from the outbox (PostgreSQL, real):
rows another worker holds are skipped, and a worker that fell behind tops its batch up
with other pending assessments and runs them in one pass."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from django.db import connection, transaction
from django.utils import timezone

from triage.models import Assessment, ModelState

pytestmark = [pytest.mark.real, pytest.mark.django_db(transaction=True)]


def _pending(make_user, n: int) -> list[Assessment]:
    author = make_user()
    now = timezone.now()
    return [
        Assessment.objects.create(source_type="chat_message", source_id=9000 + i, author=author,
                                  model_dispatched_at=now)
        for i in range(n)
    ]


@pytest.fixture
def model_runs(monkeypatch):
    from triage import engine
    from triage.services import SourceInfo

    runs: list[int] = []

    def fake_full(texts):
        runs.append(len(texts))
        return [replace(engine.assess_inline(t)) for t in texts]

    monkeypatch.setattr(engine, "assess_full", fake_full)
    monkeypatch.setattr("triage.services.source_load", lambda **kw: SourceInfo(text="hello", author_id=0))
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
