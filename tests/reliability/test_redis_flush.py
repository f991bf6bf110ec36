"""R4: Redis flushed mid-run (FLUSHALL: group memberships, queued Celery tasks and
buffered pushes all gone). The outboxes re-drive the lost tasks through beat and the
worker; open sockets rejoin their groups without reconnecting; a client that sees a
`seq` gap resyncs, and its transcript ends equal to the database."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid

import pytest
import redis as redis_lib
from django.db import connections

from accounts.models import Role
from accounts.tokens import token_issue
from chat.models import Message
from forums.models import Board
from moderation.models import QueueItem
from tests.faults import (
    Client,
    PrivateRedis,
    celery_beat_proc,
    celery_worker_proc,
    daphne_proc,
    env_with,
    live_session,
)

pytestmark = [pytest.mark.real, pytest.mark.timeout(240)]
POSTS, MESSAGES = 10, 30


def _post_thread(base: str, token: str, board_id: int, n: int) -> int:
    req = urllib.request.Request(
        f"{base}/api/v1/forums/boards/{board_id}/threads/",
        data=json.dumps({"title": f"flush {n}", "body": f"an ordinary post {n}"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Host": "127.0.0.1"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # loopback only
        return json.loads(resp.read())["first_post"]["id"]


def _queued(post_ids: list[int]) -> int:
    try:
        return QueueItem.objects.filter(post_id__in=post_ids).values("post_id").distinct().count()
    finally:
        connections.close_all()


def test_flush_redis_mid_run(make_user, tmp_path):
    young, counsellor = make_user(), make_user(Role.COUNSELLOR)
    session = live_session(young, counsellor, topic="flush")
    board = Board.objects.create(slug="flush", name="Flush", policy="pre")  # every post reaches a moderator
    young_token, staff_token = token_issue(user=young)[1], token_issue(user=counsellor)[1]

    redis = PrivateRedis()
    redis.start()
    # MESSAGES sends in ~6 s plus the request's opening message pass the default per-person
    # message limit (30 in any 10 s, counted over stored messages), which this test is not about.
    env = env_with(redis, WS_REVALIDATE_S="2", CHAT_MESSAGE_RATE="1000")
    daphne, url = daphne_proc(env)
    worker, beat = celery_worker_proc(env), celery_beat_proc(env, tmp_path)
    for proc in (daphne, worker, beat):
        proc.start()
    base = url.replace("ws://", "http://").removesuffix("/ws/")
    try:
        report = asyncio.run(_scenario(url, base, young_token, staff_token, session.conversation_id, board.id, redis, worker))
    finally:
        for proc in (beat, worker, daphne):
            proc.stop()
        redis.kill()

    db_seqs = list(Message.objects.filter(conversation_id=session.conversation_id).order_by("seq").values_list("seq", flat=True))
    assert report["staff_seqs"] == db_seqs, "the counsellor's transcript equals the database: same order, no gap, no duplicate"
    assert report["live_after_flush"], "live pushes resumed on the same socket (groups rejoined)"
    assert report["queued"] == POSTS, "every post whose task was flushed was re-driven into the queue"
    print(f"\nR4: FLUSHALL mid-run; {POSTS} flushed moderation tasks re-driven in {report['redrive_s']:.1f} s; "
          f"live delivery resumed on the same socket {report['rejoin_s']:.1f} s after the flush; "
          f"{report['syncs']} gap resyncs; staff reconnects: {report['reconnects']}")


async def _scenario(url, base, young_token, staff_token, conversation, board_id, redis, worker) -> dict:
    deadline = time.monotonic() + 150
    young, staff = Client(url, young_token), Client(url, staff_token)
    await young.connect(deadline=deadline)
    await staff.connect(deadline=deadline)
    seqs: dict[int, dict] = {}
    state = {"syncs": 0, "live_after_flush": False, "flushed_at": None, "rejoin_at": None}

    async def staff_reader(stop: asyncio.Event):
        last = 0
        while not stop.is_set():
            try:
                frame = await staff.recv(timeout=0.5)
            except TimeoutError:
                continue
            if frame.get("type") == "message.new" and frame["conversation"] == conversation:
                if frame["seq"] > last + 1:  # a gap: ask the database for what we missed
                    state["syncs"] += 1
                    await staff.send({"type": "sync", "conversation": conversation, "after_seq": last})
                seqs[frame["seq"]] = frame
                if state["flushed_at"] and not state["live_after_flush"]:
                    state["live_after_flush"] = True
                    state["rejoin_at"] = time.monotonic()
                last = max(last, frame["seq"])
            elif frame.get("type") == "sync.result":
                for message in frame["messages"]:
                    seqs[message["seq"]] = message
                    last = max(last, message["seq"])

    stop = asyncio.Event()
    reader = asyncio.create_task(staff_reader(stop))
    # Stop the worker so the moderation tasks wait in the broker, then flush them away.
    await asyncio.to_thread(worker.kill)
    post_ids = [await asyncio.to_thread(_post_thread, base, young_token, board_id, n) for n in range(POSTS)]
    await asyncio.to_thread(lambda: redis_lib.Redis(port=redis.port).flushall())
    state["flushed_at"] = time.monotonic()
    await asyncio.to_thread(worker.start)
    for n in range(MESSAGES):
        await young.send({"type": "message.send", "conversation": conversation, "client_msg_id": str(uuid.uuid4()),
                          "body": f"after the flush {n}"})
        while (await young.recv(timeout=5)).get("type") != "message.ack":
            pass
        await asyncio.sleep(0.2)
    queued = 0
    while time.monotonic() < deadline:
        queued = await asyncio.to_thread(_queued, post_ids)
        if queued == POSTS and state["live_after_flush"]:
            break
        await asyncio.sleep(0.5)
    redrive_s = time.monotonic() - state["flushed_at"]
    await staff.send({"type": "sync", "conversation": conversation, "after_seq": max(seqs, default=0)})
    await asyncio.sleep(1.0)
    stop.set()
    await reader
    await young.close()
    await staff.close()
    return {
        "staff_seqs": sorted(seqs),
        "live_after_flush": state["live_after_flush"],
        "queued": queued,
        "redrive_s": redrive_s,
        "rejoin_s": (state["rejoin_at"] or time.monotonic()) - state["flushed_at"],
        "syncs": state["syncs"],
        "reconnects": staff.reconnects,
    }
