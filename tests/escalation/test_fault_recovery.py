"""Fault test (issue 5): 200 crisis messages over real websockets to Daphne, with a
real Celery worker and beat on a Redis broker, while the worker is SIGKILLed and
restarted and Redis is killed and restarted twice. Afterwards every escalation exists
exactly once and every one reached a clinician socket. Prints the time to recover."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import pytest
from django.db import connections
from django.utils import timezone

from accounts.models import Role, Shift, Tier
from accounts.tokens import token_issue
from tests.faults import (
    Client,
    PrivateRedis,
    celery_beat_proc,
    celery_worker_proc,
    daphne_proc,
    env_with,
)
from triage.models import Escalation

pytestmark = [pytest.mark.real, pytest.mark.timeout(240)]

CLIENTS, PER_CLIENT = 10, 20
SEND_INTERVAL_S = 0.35


def _setup_sessions(make_user):
    from chat import services as chat

    now = timezone.now()
    clinician = make_user(Role.CLINICIAN, handle="dr_fault")
    Shift.objects.create(clinician=clinician, tier=Tier.PRIMARY, start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=2))
    pairs = []
    for n in range(CLIENTS):
        young, counsellor = make_user(), make_user(Role.COUNSELLOR)
        request = chat.session_request(young_person=young, topic="fault test", body="hello")
        chat.counsellor_status_set(user=counsellor, status="available", capacity=1)
        session = chat.session_accept(counsellor=counsellor, session_id=request.session.id)
        pairs.append((token_issue(user=young)[1], session.conversation_id, n))
    return token_issue(user=clinician)[1], pairs


def _escalation_ids() -> set[int]:
    try:
        return set(Escalation.objects.values_list("id", flat=True))
    finally:
        connections.close_all()  # this runs in a worker thread: leave no session behind


def test_200_crisis_messages_survive_worker_kills_and_redis_restarts(make_user, tmp_path):
    clinician_token, pairs = _setup_sessions(make_user)
    redis = PrivateRedis()
    redis.start()
    env = env_with(redis)
    daphne, url = daphne_proc(env)
    worker, beat = celery_worker_proc(env, queues="crisis,default"), celery_beat_proc(env, tmp_path)
    for proc in (daphne, worker, beat):
        proc.start()
    try:
        report = asyncio.run(_scenario(url, clinician_token, pairs, redis, worker))
    finally:
        for proc in (beat, worker, daphne):
            proc.stop()
        redis.kill()

    escalations = Escalation.objects.filter(young_person__role=Role.YOUNG_PERSON)
    assert escalations.count() == CLIENTS * PER_CLIENT
    assert escalations.values("source_type", "source_id").distinct().count() == CLIENTS * PER_CLIENT
    from chat.models import Message

    sent = Message.objects.filter(sender__role=Role.YOUNG_PERSON, body__startswith="I have taken 20 paracetamol")
    assert sent.count() == CLIENTS * PER_CLIENT, "every message stored exactly once"
    assert report["missing"] == set(), f"escalations never seen by a clinician socket: {sorted(report['missing'])[:10]}"
    print(
        f"\nFAULT TEST: {CLIENTS * PER_CLIENT} crisis messages, worker killed {report['worker_kills']}x, "
        f"redis restarted {report['redis_restarts']}x; all escalations at a clinician socket "
        f"{report['recovery_s']:.1f} s after the last fault; client reconnects: {report['reconnects']}"
    )


async def _scenario(url, clinician_token, pairs, redis, worker) -> dict:
    done = asyncio.Event()
    seen: set[int] = set()
    hard_deadline = time.monotonic() + 180
    clinician = Client(url, clinician_token)

    async def listen():
        while not done.is_set():
            try:
                for frame in await clinician.connect(deadline=hard_deadline):
                    _record(frame)
                while not done.is_set():
                    try:
                        _record(await clinician.recv(timeout=0.5))
                    except TimeoutError:
                        continue
            except Exception:
                await clinician.close()
                await asyncio.sleep(0.2)

    def _record(frame):
        if frame.get("type") == "escalation.new":
            seen.add(frame["escalation"]["id"])
        elif frame.get("type") == "escalation.list":
            seen.update(e["id"] for e in frame["escalations"])

    async def send_all(token, conversation, n):
        client = Client(url, token)
        for i in range(PER_CLIENT):
            frame = {"type": "message.send", "conversation": conversation, "client_msg_id": str(uuid.uuid4()),
                     "body": f"I have taken 20 paracetamol ({n}-{i})"}
            while True:  # retry the same client_msg_id until acknowledged
                try:
                    if client.ws is None:
                        await client.connect(deadline=hard_deadline)
                    await client.send(frame)
                    while True:
                        reply = await client.recv(timeout=3)
                        if reply.get("type") == "message.ack" and reply.get("client_msg_id") == frame["client_msg_id"]:
                            break
                        if reply.get("type") == "error" and reply.get("code") == "rate_limited":
                            raise TimeoutError
                    break
                except Exception:
                    await client.close()
                    if time.monotonic() > hard_deadline:
                        raise
                    await asyncio.sleep(0.3)
            await asyncio.sleep(SEND_INTERVAL_S)
        await client.close()
        return client.reconnects

    last_fault = {"t": time.monotonic()}
    counts = {"worker_kills": 0, "redis_restarts": 0}

    async def faults():
        loop = asyncio.get_running_loop()
        plan = [
            (1.0, "kill_worker"), (2.0, "start_worker"), (3.0, "restart_redis"),
            (4.5, "kill_worker"), (5.5, "start_worker"), (6.5, "restart_redis"),
        ]
        start = time.monotonic()
        for at, action in plan:
            await asyncio.sleep(max(0, start + at - time.monotonic()))
            if action == "kill_worker":
                await loop.run_in_executor(None, worker.kill)
                counts["worker_kills"] += 1
            elif action == "start_worker":
                await loop.run_in_executor(None, worker.start)
            else:
                await loop.run_in_executor(None, redis.restart)
                counts["redis_restarts"] += 1
            last_fault["t"] = time.monotonic()

    listener = asyncio.create_task(listen())
    results = await asyncio.gather(faults(), *(send_all(t, c, n) for t, c, n in pairs))
    expected: set[int] = set()
    while time.monotonic() < hard_deadline:
        expected = await asyncio.to_thread(_escalation_ids)
        if len(expected) >= CLIENTS * PER_CLIENT and expected <= seen:
            break
        await asyncio.sleep(0.5)
    recovery_s = time.monotonic() - last_fault["t"]
    done.set()
    await listener
    await clinician.close()
    return {"missing": expected - seen, "recovery_s": recovery_s, "reconnects": sum(results[1:]), **counts}
