"""A model-layer worker that dies between claiming its batch and writing the results
(SIGKILL, OOM, a hard time limit): its claims stay `running`, untouched while the lease
could still be a live run's; once the lease is over the outbox sweeper hands them back,
and a real Celery worker on the Redis broker (the real model, in its SCHED_IDLE thread)
finishes them."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from django.utils import timezone

from accounts.models import Role
from chat import services as chat
from tests.faults import celery_worker_proc, live_session
from triage import reassess
from triage.models import Assessment, ModelState

pytestmark = [pytest.mark.real, pytest.mark.timeout(180), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def model_worker(settings):
    from config.celery import app
    from tests.conftest import process_env

    worker = celery_worker_proc({**process_env(), "EARLYHELP_TEST_MODEL_DISPATCH": "1"}, queues="triage")
    worker.start()
    app.conf.task_always_eager = False
    try:
        yield worker
    finally:
        app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
        worker.stop()


def test_a_dead_workers_claims_are_finished_by_a_live_worker(make_user, settings, model_worker):
    young, counsellor = make_user(), make_user(Role.COUNSELLOR)
    session = live_session(young, counsellor, body="exams are getting to me")
    for n in range(4):
        chat.message_send(sender=young, conversation_id=session.conversation_id, client_msg_id=uuid.uuid4(), body=f"revision is going ok I guess {n}")
    ids = list(Assessment.objects.filter(conversation_id=session.conversation_id).values_list("id", flat=True))
    assert len(ids) == 5  # the request and four messages, pending (this process dispatches nothing)

    # What a worker leaves when it dies after claiming: the rows `running` under its token.
    claimed_at = timezone.now()
    assert sorted(a.pk for a in reassess._claim(ids, top_up=0, token=uuid.uuid4())) == sorted(ids)
    settings.TRIAGE_MODEL_DISPATCH = True
    # Within the lease it could be a slow live run: left alone.
    assert reassess.model_outbox_sweep(now=claimed_at + dt.timedelta(seconds=reassess.CLAIM_LEASE_S - 5)) == 0
    # After it, handed back and re-dispatched to the live worker.
    assert reassess.model_outbox_sweep(now=claimed_at + dt.timedelta(seconds=reassess.CLAIM_LEASE_S + 1)) == 5

    rows = Assessment.objects.filter(pk__in=ids)
    deadline = time.monotonic() + 120  # includes the worker loading the model
    while time.monotonic() < deadline and rows.filter(model_state__in=[ModelState.PENDING, ModelState.RUNNING]).exists():
        time.sleep(0.5)
    states = sorted(rows.values_list("model_state", "model_attempts"))
    # done with trained artefacts; failed (and routed to review) without them: never lost
    assert {s for s, _ in states} <= {ModelState.DONE, ModelState.FAILED} and {a for _, a in states} == {1}, states
    from triage import model

    if (model.model_dir() / model.CKPT_NAME).exists():
        assert {s for s, _ in states} == {ModelState.DONE}, states
