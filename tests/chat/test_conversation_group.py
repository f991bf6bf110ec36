"""A message sent on the event loop is one push to its conversation's group (`conv.<id>`),
carrying each recipient's copy (config.realtime.send_copies_now).

Over the websocket protocol on PostgreSQL and channels_redis: every live participant's
sockets get their own copy (staff with the risk assessment, the young person without),
whichever way the socket came to be in the group (connected before or after the
participant joined, the request's own socket or another device); a socket whose user is
no longer live (transferred out, stopped observing) stays in the group and hears
nothing; the groups are left when the session ends.
"""

from __future__ import annotations

import asyncio

import pytest

from accounts.models import Role
from api import sockets
from config import realtime
from tests.chat.helpers import Peer, chat_pair, make

pytestmark = [pytest.mark.real]


@pytest.fixture
def layer_sends(monkeypatch):
    """(group, message) of every push the event loop hands to the channel layer."""
    sent: list[tuple[str, dict]] = []
    original = realtime._layer_send_many

    async def recorded(layer, sends):
        sent.extend(sends)
        await original(layer, sends)

    monkeypatch.setattr(realtime, "_layer_send_many", recorded)
    return sent


def _joined(user_id: int) -> list[set[str]]:
    """The groups of each of this process's sockets of the user."""
    return [set(c.joined) for c in sockets.live() if c.user.id == user_id]


async def test_a_message_is_one_push_to_its_conversation_with_each_sides_copy(make_user, token_for, layer_sends):
    yp, co, conv = await chat_pair(make_user, token_for)
    layer_sends.clear()
    ack = await yp.say(conv, "I have been feeling low")
    to_co, to_yp = await co.recv("message.new"), await yp.recv("message.new")
    assert to_co["id"] == to_yp["id"] == ack["id"]
    assert "risk" in to_co and "risk" not in to_yp
    pushes = [(g, m) for g, m in layer_sends if m["type"] == realtime.CONVERSATION_EVENT]
    assert [g for g, _ in layer_sends] == [f"conv.{conv}"] and len(pushes) == 1
    assert sorted(ids[0] for ids, _ in pushes[0][1]["copies"]) == sorted([yp.user.id, co.user.id])

    # A counsellor's message has no assessment: both sides' copies are the same frame, sent once.
    layer_sends.clear()
    ack = await co.say(conv, "I'm here. Tell me more?")
    assert (await yp.recv("message.new"))["id"] == ack["id"]
    assert (await co.recv("message.new"))["id"] == ack["id"]
    [(group, push)] = layer_sends
    assert group == f"conv.{conv}" and len(push["copies"]) == 1
    assert sorted(push["copies"][0][0]) == sorted([yp.user.id, co.user.id])
    await yp.close()
    await co.close()


async def test_every_device_joins_whenever_it_connected(make_user, token_for):
    yp_user = await make(make_user, Role.YOUNG_PERSON)
    co_user = await make(make_user, Role.COUNSELLOR)
    yp_other = await Peer.open(yp_user, token_for)  # before the request
    co_other = await Peer.open(co_user, token_for)  # before the assignment
    yp, co = await Peer.open(yp_user, token_for), await Peer.open(co_user, token_for)
    conv = (await yp.call("session.queued", type="session.request", topic="t", body="hello?"))["conversation"]
    await co.call("counsellor.status", type="counsellor.status", status="available")
    await co.send(type="session.accept")
    await co_other.recv("session.assigned")
    await yp_other.recv("session.assigned")
    yp_later, co_later = await Peer.open(yp_user, token_for), await Peer.open(co_user, token_for)  # after

    ack = await co.say(conv, "Hi, thanks for waiting")
    for peer in (yp_other, yp_later, co_other, co_later):
        assert (await peer.until("message.new", lambda f: f["id"] == ack["id"]))["body"] == "Hi, thanks for waiting"
    ack = await yp.say(conv, "I can't sleep")
    for peer in (co_other, co_later):
        assert "risk" in await peer.until("message.new", lambda f: f["id"] == ack["id"])
    for peer in (yp_other, yp_later):
        assert "risk" not in await peer.until("message.new", lambda f: f["id"] == ack["id"])
    assert all(f"conv.{conv}" in groups for groups in _joined(yp_user.id) + _joined(co_user.id))
    for peer in (yp, co, yp_other, co_other, yp_later, co_later):
        await peer.close()


async def _session_of(sup: Peer, conv: int) -> int:
    sessions = (await sup.call("sessions.live", type="sessions.live"))["sessions"]
    return next(s["session"] for s in sessions if s["conversation"] == conv)


async def _eventually(check, timeout: float = 5) -> None:
    """Layer messages (a groups.leave) and frames reach a socket by different queues."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_a_counsellor_transferred_out_stays_in_the_group_and_hears_nothing(make_user, token_for):
    yp, co, conv = await chat_pair(make_user, token_for)
    sup = await Peer.open(await make(make_user, Role.SUPERVISOR), token_for)
    await co.send(type="session.transfer", session=await _session_of(sup, conv), to=sup.user.id)
    await sup.recv("session.transferred")
    await co.recv("session.transferred")

    ack = await yp.say(conv, "Is someone new here?")
    assert (await sup.until("message.new", lambda f: f["id"] == ack["id"]))["risk"]
    assert all(f"conv.{conv}" in groups for groups in _joined(co.user.id))  # the route, not the permission
    assert [f for f in await co.drain() if f["type"] == "message.new"] == []
    for peer in (yp, co, sup):
        await peer.close()


async def test_the_sessions_end_takes_every_socket_out_of_the_group(make_user, token_for):
    yp, co, conv = await chat_pair(make_user, token_for)
    sup = await Peer.open(await make(make_user, Role.SUPERVISOR), token_for)
    sid = await _session_of(sup, conv)
    await sup.call("session.observing", type="session.observe", session=sid)
    assert all(f"conv.{conv}" in groups for groups in _joined(sup.user.id))
    await co.send(type="session.end", session=sid)
    for peer in (yp, co, sup):
        await peer.recv("session.ended")
    await _eventually(lambda: all(f"conv.{conv}" not in groups
                                  for user in (yp.user, co.user, sup.user) for groups in _joined(user.id)))
    for peer in (yp, co, sup):
        await peer.close()
