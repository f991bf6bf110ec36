"""Live websocket feeds and the pipeline run by a real Celery worker on Redis."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async

from forums.models import Post
from moderation.models import CheckState, PostCheck, QueueItem
from tests.conftest import ws_open, ws_receive_until
from triage.models import Escalation

pytestmark = pytest.mark.django_db(transaction=True)


async def test_moderators_see_queue_change_live(make_user, token_for, make_board, post_thread, moderator, client_for):
    board = await sync_to_async(make_board)("pre")
    author = await sync_to_async(make_user)()
    comm = await ws_open(await sync_to_async(token_for)(moderator))
    young_comm = await ws_open(await sync_to_async(token_for)(author))
    try:
        thread = await sync_to_async(post_thread)(author, board)
        frame = await ws_receive_until(comm, "moderation.item")
        assert frame["event"] == "created" and frame["item"]["post_id"] == thread["first_post"]["id"]
        assert frame["item"]["queue"] == "sanction" and "body" not in frame["item"]
        await sync_to_async(lambda: client_for(moderator).post(f"/api/v1/moderation/items/{frame['item']['id']}/claim/"))()
        claimed = await ws_receive_until(comm, "moderation.item")
        assert claimed["event"] == "claimed" and claimed["item"]["claimed_by"] == moderator.id
        await comm.send_json_to({"type": "moderation.snapshot", "ref": 1})
        snap = await ws_receive_until(comm, "moderation.snapshot")
        assert snap["lengths"] == {"care": 0, "sanction": 1} and snap["ref"] == 1
        await young_comm.send_json_to({"type": "moderation.snapshot"})
        assert (await ws_receive_until(young_comm, "error"))["code"] == "wrong_role"
    finally:
        await comm.disconnect()
        await young_comm.disconnect()


async def test_thread_subscribers_get_published_posts_and_authors_get_notifications(make_user, token_for, make_board, post_thread, client_for):
    board = await sync_to_async(make_board)("auto")
    author, reader = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    thread = await sync_to_async(post_thread)(author, board)
    reader_comm = await ws_open(await sync_to_async(token_for)(reader))
    author_comm = await ws_open(await sync_to_async(token_for)(author))
    try:
        await reader_comm.send_json_to({"type": "forum.subscribe", "thread_id": thread["id"], "ref": "s1"})
        ok = await ws_receive_until(reader_comm, "forum.subscribed")
        assert ok["thread_id"] == thread["id"] and ok["ref"] == "s1"
        await sync_to_async(
            lambda: client_for(reader).post(f"/api/v1/forums/threads/{thread['id']}/posts/", {"body": "sending a hug"}, format="json")
        )()
        frame = await ws_receive_until(reader_comm, "forum.post")
        assert frame["event"] == "published" and frame["post"]["body"] == "sending a hug"
        note = await ws_receive_until(author_comm, "notification")
        assert note["kind"] == "reply" and note["thread_id"] == thread["id"]
        await reader_comm.send_json_to({"type": "forum.subscribe", "thread_id": 999999})
        assert (await ws_receive_until(reader_comm, "error"))["code"] == "not_found"
        await reader_comm.send_json_to({"type": "forum.subscribe"})
        assert (await ws_receive_until(reader_comm, "error"))["code"] == "validation_error"
    finally:
        await reader_comm.disconnect()
        await author_comm.disconnect()


async def test_care_offer_frame_reaches_author(make_user, token_for, make_board, post_thread):
    board = await sync_to_async(make_board)("auto")
    author = await sync_to_async(make_user)()
    comm = await ws_open(await sync_to_async(token_for)(author))
    try:
        await sync_to_async(post_thread)(author, board, body="i want to end it all tonight")
        frame = await ws_receive_until(comm, "notification")
        assert frame["kind"] == "care_offer" and frame["action"] == "session.request" and frame["resources"]
    finally:
        await comm.disconnect()


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.real
def test_pipeline_on_a_real_celery_worker(celery_worker, make_user, make_board, post_thread):
    """The worker process runs the real triage.engine.assess_full (no mocks cross the
    process boundary): if the model layer is unavailable it degrades to "review", so
    an auto board holds the post rather than publishing it unchecked."""
    auto, pre = make_board("auto"), make_board("pre")
    author = make_user()
    clean = post_thread(author, auto, body="Does anyone have tips for sleeping before exams?")
    risky = post_thread(author, pre, body="I want to kill myself tonight")
    clean_id, risky_id = clean["first_post"]["id"], risky["first_post"]["id"]
    assert clean["first_post"]["state"] == "held"  # the worker has not run yet
    assert _wait(lambda: PostCheck.objects.filter(post_id__in=[clean_id, risky_id], state=CheckState.DONE).count() == 2)
    check = PostCheck.objects.get(post_id=clean_id)
    state = Post.objects.get(pk=clean_id).state
    if check.result["degraded"]:
        assert state == "held" and "not_fully_checked" in QueueItem.objects.get(post_id=clean_id).reasons
    else:
        assert state == "published"
    assert QueueItem.objects.get(post_id=risky_id).queue == "care"
    assert Escalation.objects.filter(source_type="forum_post", source_id=risky_id).exists()
    # A lost dispatch is recovered by the sweeper, through the broker and the worker.
    from moderation.services import checks_sweep

    lost_id = post_thread(author, auto, body="hello again")["first_post"]["id"]
    assert _wait(lambda: PostCheck.objects.filter(post_id=lost_id, state=CheckState.DONE).exists())
    # Simulate a dispatch lost between commit and send: only the sweeper can deliver it.
    PostCheck.objects.filter(post_id=lost_id).update(state=CheckState.PENDING, dispatched_at=None, result=None)
    QueueItem.objects.filter(post_id=lost_id).update(state="closed")
    Post.objects.filter(pk=lost_id).update(state="held")
    assert checks_sweep(older_than_s=0) == 1
    assert _wait(lambda: PostCheck.objects.filter(post_id=lost_id, state=CheckState.DONE).exists())
