"""R3: channel-layer overflow and group expiry, forced, on the core layer (where buffers
and memberships live in Redis), and lost subscriptions on the pub/sub layer (the product
default). Live pushes are only hints: the client notices the gap in `seq`, resyncs from
the database, and ends with the full transcript (same order, no gap, no duplicate)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from accounts.models import Role
from accounts.tokens import token_issue
from chat.models import Message
from tests.faults import (
    Client,
    PrivateRedis,
    TranscriptFollower,
    daphne_proc,
    env_with,
    live_session,
    say,
)

pytestmark = [pytest.mark.real, pytest.mark.timeout(180)]


def _session(make_user):
    young, counsellor = make_user(), make_user(Role.COUNSELLOR)
    session = live_session(young, counsellor, topic="r3")
    return token_issue(user=young)[1], token_issue(user=counsellor)[1], session.conversation_id


def _db_seqs(conversation: int) -> list[int]:
    return list(Message.objects.filter(conversation_id=conversation).order_by("seq").values_list("seq", flat=True))


def _stack(layer: str = "core", **env_extra):
    redis = PrivateRedis()
    redis.start()
    env = env_with(redis, CHAT_MESSAGE_RATE="1000", CHANNEL_LAYER=layer, **env_extra)
    (a, url_a), (b, url_b) = daphne_proc(env), daphne_proc(env)
    a.start()
    b.start()
    return redis, (a, url_a), (b, url_b)


def test_overflow_of_a_paused_server_is_repaired_by_resync(make_user):
    """The counsellor's server is stopped (SIGSTOP) while 25 messages arrive: its channel
    buffer (capacity 2) overflows and the layer drops the rest silently."""
    report = _paused_server_run(make_user, "core", {"CHANNEL_CAPACITY": "2"}, "the overflow really dropped pushes")
    print(f"\nR3 overflow: {report['sent']} sent while the server was paused, {report['live']} live pushes "
          f"arrived, {report['syncs']} resyncs; transcript equals the database")


def _paused_server_run(make_user, layer: str, env: dict[str, str], why: str, cut=None) -> dict:
    """Server B (the counsellor's) paused while the young person sends; `cut(redis)` runs
    during the pause. The counsellor's transcript must end equal to the database."""
    young_token, staff_token, conversation = _session(make_user)
    redis, (a, url_a), (b, url_b) = _stack(layer, **env)
    try:
        report = asyncio.run(_overflow(url_a, url_b, young_token, staff_token, conversation, b,
                                       while_paused=(lambda: cut(redis)) if cut else None))
    finally:
        for proc in (b, a):
            proc.stop()
        redis.kill()
    assert report["seqs"] == _db_seqs(conversation)
    assert report["live"] < report["sent"], why
    assert report["syncs"] >= 1
    return report


async def _open_pair(url_a, url_b, young_token, staff_token, conversation):
    """The young person on server A; the counsellor, following the transcript, on server B."""
    young, staff = Client(url_a, young_token), Client(url_b, staff_token)
    await young.connect(deadline=asyncio.get_running_loop().time() + 30)
    await staff.connect(deadline=asyncio.get_running_loop().time() + 30)
    follower = TranscriptFollower(staff, conversation)
    stop = asyncio.Event()
    return young, staff, follower, stop, asyncio.create_task(follower.pump(stop))


async def _close_pair(young, staff, follower, stop, pump, sent) -> dict:
    stop.set()
    await pump
    await young.close()
    await staff.close()
    return {"seqs": follower.seqs(), "live": follower.live, "syncs": follower.syncs, "sent": sent}


def test_lost_subscription_on_the_pubsub_layer_is_repaired_by_resync(make_user):
    """The counsellor's server is paused and its Redis subscriptions are cut (what Redis
    does to a subscriber over its output-buffer limit, or a network blip): pushes published
    meanwhile reach nobody. On resume it resubscribes; the next push reveals the gap."""
    report = _paused_server_run(make_user, "pubsub", {}, "cutting the subscriptions really dropped pushes",
                                cut=lambda redis: redis.cli("CLIENT", "KILL", "TYPE", "pubsub"))
    print(f"\nR3 pub/sub subscriptions cut: {report['sent']} sent while the server was paused and "
          f"unsubscribed, {report['live']} live pushes arrived, {report['syncs']} resyncs; transcript equals the database")


async def _overflow(url_a, url_b, young_token, staff_token, conversation, server_b, while_paused=None) -> dict:
    young, staff, follower, stop, pump = await _open_pair(url_a, url_b, young_token, staff_token, conversation)
    await say(young, conversation, "before the pause")
    await asyncio.sleep(0.5)
    os.kill(server_b.proc.pid, signal.SIGSTOP)
    sent = 1
    try:
        if while_paused is not None:
            while_paused()
        for n in range(25):
            await say(young, conversation, f"while paused {n}")
            sent += 1
    finally:
        os.kill(server_b.proc.pid, signal.SIGCONT)
    await asyncio.sleep(1.0)
    await say(young, conversation, "after the pause")  # its seq reveals the gap
    sent += 1
    await asyncio.sleep(1.5)
    return await _close_pair(young, staff, follower, stop, pump, sent)


def test_group_expiry_is_repaired_by_rejoin_and_resync(make_user):
    """Memberships expire after 2 s but sockets only re-add them every 4 s, so about
    half the live pushes find nobody in the group."""
    young_token, staff_token, conversation = _session(make_user)
    redis, (a, url_a), (b, url_b) = _stack(CHANNEL_GROUP_EXPIRY="2", WS_REVALIDATE_S="4")
    try:
        report = asyncio.run(_expiry(url_a, url_b, young_token, staff_token, conversation))
    finally:
        for proc in (b, a):
            proc.stop()
        redis.kill()
    assert report["seqs"] == _db_seqs(conversation)
    assert report["live"] < report["sent"], "group expiry really dropped pushes"
    assert report["syncs"] >= 1
    print(f"\nR3 group expiry: {report['sent']} sent, {report['live']} live pushes arrived, "
          f"{report['syncs']} resyncs; transcript equals the database")


async def _expiry(url_a, url_b, young_token, staff_token, conversation) -> dict:
    young, staff, follower, stop, pump = await _open_pair(url_a, url_b, young_token, staff_token, conversation)
    sent = 0
    for n in range(40):
        await say(young, conversation, f"message {n}")
        sent += 1
        await asyncio.sleep(0.25)
    await asyncio.sleep(5)  # past the next rejoin: the last message's push or a resync lands
    await follower.sync()  # what a client does when it comes back to the foreground
    await asyncio.sleep(1.0)
    return await _close_pair(young, staff, follower, stop, pump, sent)
