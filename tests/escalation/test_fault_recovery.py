"""Fault test (issue 5): 200 crisis messages over real websockets to Daphne, with a
real Celery worker and beat on a Redis broker, while the worker is SIGKILLed and
restarted and Redis is killed and restarted twice. Afterwards every escalation exists
exactly once and every one reached a clinician socket. Prints the time to recover."""

from __future__ import annotations

import asyncio

import pytest

from accounts.models import Role
from chat.models import Message
from tests.faults import (
    PrivateRedis,
    celery_beat_proc,
    celery_worker_proc,
    crisis_storm,
    daphne_proc,
    env_with,
    sessions_for_storm,
)
from triage.models import Escalation

pytestmark = [pytest.mark.real, pytest.mark.timeout(240)]

CLIENTS, PER_CLIENT = 10, 20


def test_200_crisis_messages_survive_worker_kills_and_redis_restarts(make_user, tmp_path):
    clinician_token, pairs = sessions_for_storm(make_user, clients=CLIENTS)
    redis = PrivateRedis()
    redis.start()
    env = env_with(redis)
    daphne, url = daphne_proc(env)
    worker, beat = celery_worker_proc(env, queues="crisis,default"), celery_beat_proc(env, tmp_path)
    for proc in (daphne, worker, beat):
        proc.start()
    plan = [(1.0, "kill_worker"), (2.0, "start_worker"), (3.0, "restart_redis"),
            (4.5, "kill_worker"), (5.5, "start_worker"), (6.5, "restart_redis")]
    actions = {"kill_worker": worker.kill, "start_worker": worker.start, "restart_redis": redis.restart}
    try:
        report = asyncio.run(crisis_storm([url], clinician_token, pairs, per_client=PER_CLIENT, plan=plan, actions=actions))
    finally:
        for proc in (beat, worker, daphne):
            proc.stop()
        redis.kill()

    total = CLIENTS * PER_CLIENT
    escalations = Escalation.objects.filter(young_person__role=Role.YOUNG_PERSON)
    assert escalations.count() == total
    assert escalations.values("source_type", "source_id").distinct().count() == total
    sent = Message.objects.filter(sender__role=Role.YOUNG_PERSON, body__startswith="I have taken 20 paracetamol")
    assert sent.count() == total, "every message stored exactly once"
    assert report["missing"] == set(), f"escalations never seen by a clinician socket: {sorted(report['missing'])[:10]}"
    print(f"\nFAULT TEST: {total} crisis messages, faults {report['faults']}; every escalation at a clinician "
          f"socket {report['recovery_s']:.1f} s after the last fault (worst single escalation {report['worst_after_recovery_s']:.1f} s after recovery); client reconnects: {report['client_reconnects']}")
