"""R5: the triage model layer failing on every call. Every forum post still reaches a
moderator's queue and every chat message is marked for review (never "no risk"),
within 30 s, through a real Celery worker on the Redis broker."""

from __future__ import annotations

import time
import uuid

import pytest
from channels.db import database_sync_to_async

from accounts.models import Role
from forums.models import Board
from moderation.models import QueueItem
from tests.conftest import ws_open, ws_receive_until
from tests.faults import celery_worker_proc, live_session
from triage.models import Assessment, ModelState

pytestmark = [pytest.mark.real, pytest.mark.timeout(180)]
POSTS = MESSAGES = 20


@pytest.fixture
def broken_model_worker(settings, tmp_path):
    """A worker whose model layer cannot load (empty model directory)."""
    from config.celery import app
    from tests.conftest import process_env

    env = process_env()
    env.update(TRIAGE_MODEL_DIR=str(tmp_path / "no-models-here"), EARLYHELP_TEST_MODEL_DISPATCH="1")
    worker = celery_worker_proc(env)
    worker.start()
    app.conf.task_always_eager = False
    settings.TRIAGE_MODEL_DISPATCH = True
    try:
        yield worker
    finally:
        app.conf.task_always_eager = True
        worker.stop()


async def test_model_failure_still_reaches_people(broken_model_worker, make_user, client_for, token_for):
    author = await database_sync_to_async(make_user)()
    board = await database_sync_to_async(Board.objects.create)(slug="r5", name="R5", policy="auto")
    client = await database_sync_to_async(client_for)(author)
    started = time.monotonic()
    post_ids = []
    for n in range(POSTS):
        resp = await database_sync_to_async(client.post)(
            f"/api/v1/forums/boards/{board.id}/threads/", {"title": f"t{n}", "body": f"ordinary post {n}"}, format="json"
        )
        assert resp.status_code == 201, resp.content
        post_ids.append(resp.json()["first_post"]["id"])

    counsellor = await database_sync_to_async(make_user)(Role.COUNSELLOR)

    session = await database_sync_to_async(live_session)(author, counsellor, topic="r5", body="hi")
    young_ws = await ws_open(await database_sync_to_async(token_for)(author))
    staff_ws = await ws_open(await database_sync_to_async(token_for)(counsellor))
    for n in range(MESSAGES):
        await young_ws.send_json_to({"type": "message.send", "conversation": session.conversation_id,
                                     "client_msg_id": str(uuid.uuid4()), "body": f"just chatting {n}"})
        await ws_receive_until(young_ws, "message.ack")
    delivered = 0
    while delivered < MESSAGES:
        frame = await ws_receive_until(staff_ws, "message.new")
        delivered += frame.get("body", "").startswith("just chatting")

    def all_reached_people() -> bool:
        queued = QueueItem.objects.filter(post_id__in=post_ids).values("post_id").distinct().count()
        failed = Assessment.objects.filter(
            conversation_id=session.conversation_id, source_type="chat_message", model_state=ModelState.FAILED
        ).exclude(action="allow").count()
        return queued == POSTS and failed == MESSAGES

    while time.monotonic() - started < 30 and not await database_sync_to_async(all_reached_people)():
        await database_sync_to_async(time.sleep)(0.5)
    elapsed = time.monotonic() - started
    assert await database_sync_to_async(all_reached_people)(), "not every item reached a person within 30 s"
    print(f"\nR5: model layer down; {POSTS} posts queued for moderators and {MESSAGES} chat messages "
          f"marked for review within {elapsed:.1f} s")
    await young_ws.disconnect()
    await staff_ws.disconnect()
