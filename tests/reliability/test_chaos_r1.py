"""R1: 500 crisis messages from 20 clients over two Daphne processes while the Celery
worker is SIGKILLed three times, Redis is restarted twice and paused (SIGSTOP) for 10 s,
and one ASGI process is killed. Every message stored once, triaged once and escalated
exactly once; every escalation visible to a clinician within 30 s of recovery."""

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
from triage.models import Assessment, Escalation

pytestmark = [pytest.mark.real, pytest.mark.timeout(300)]

CLIENTS, PER_CLIENT = 20, 25


def test_r1_crisis_storm_under_chaos(make_user, tmp_path):
    clinician_token, pairs = sessions_for_storm(make_user, clients=CLIENTS)
    redis = PrivateRedis()
    redis.start()
    env = env_with(redis)
    (daphne_a, url_a), (daphne_b, url_b) = daphne_proc(env), daphne_proc(env)
    # The crisis queue has a worker of its own, as in production (README): a busy triage
    # queue must never starve escalation delivery.
    worker, beat = celery_worker_proc(env, queues="crisis"), celery_beat_proc(env, tmp_path)
    for proc in (daphne_a, daphne_b, worker, beat):
        proc.start()

    def pause_redis_10s():
        import time

        redis.pause()
        time.sleep(10)
        redis.resume()

    plan = [
        (1.0, "kill_worker"), (2.0, "start_worker"), (3.0, "restart_redis"),
        (5.0, "kill_worker"), (6.0, "start_worker"), (7.0, "pause_redis_10s"),
        (18.0, "kill_asgi_b"), (19.0, "kill_worker"), (20.0, "start_worker"), (21.0, "restart_redis"),
    ]
    actions = {
        "kill_worker": worker.kill, "start_worker": worker.start, "restart_redis": redis.restart,
        "pause_redis_10s": pause_redis_10s, "kill_asgi_b": daphne_b.kill,
    }
    try:
        report = asyncio.run(
            crisis_storm([url_a, url_b], clinician_token, pairs, per_client=PER_CLIENT, plan=plan, actions=actions,
                         interval_s=0.6, budget_s=240)
        )
    finally:
        for proc in (beat, worker, daphne_b, daphne_a):
            proc.stop()
        redis.kill()

    total = CLIENTS * PER_CLIENT
    sent = Message.objects.filter(sender__role=Role.YOUNG_PERSON, body__startswith="I have taken 20 paracetamol")
    assert sent.count() == total, "every message stored exactly once"
    message_ids = set(sent.values_list("id", flat=True))
    assessments = Assessment.objects.filter(source_type="chat_message", source_id__in=message_ids)
    assert assessments.count() == total, "every message triaged exactly once"
    escalations = Escalation.objects.filter(source_type="chat_message", source_id__in=message_ids)
    assert escalations.count() == total, "every message escalated exactly once"
    assert report["missing"] == set(), f"never reached a clinician: {sorted(report['missing'])[:10]}"
    assert report["worst_after_recovery_s"] <= 30, f"an escalation took {report['worst_after_recovery_s']:.1f} s after recovery"
    print(f"\nR1: {total} crisis messages from {CLIENTS} clients over 2 Daphne processes; faults {report['faults']}; "
          f"every escalation at a clinician socket within {report['worst_after_recovery_s']:.1f} s of recovery "
          f"(all delivered {report['recovery_s']:.1f} s after the last fault, senders still running); "
          f"client reconnects: {report['client_reconnects']}")
