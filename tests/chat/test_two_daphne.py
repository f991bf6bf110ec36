"""The whole flow with a real websocket client against TWO Daphne processes that share
channels_redis and PostgreSQL: the young person on one, the counsellor on the other."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.client import connect

from accounts.models import Role
from chat.models import Message

pytestmark = [pytest.mark.real]


class Client:
    def __init__(self, name: str):
        self.name = name
        self.ws = None
        self.backlog: list[dict] = []

    @classmethod
    async def open(cls, base_url: str, token: str, name: str) -> Client:
        self = cls(name)
        url = base_url.replace("http://", "ws://") + "/ws/"
        self.ws = await connect(url, origin="http://localhost", subprotocols=["earlyhelp.v1", f"token.{token}"],
                                proxy=None, open_timeout=10)
        assert (await self.recv("auth.ok"))["user"]["role"]
        await self.recv("chat.state")
        return self

    async def send(self, **frame) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, frame_type: str, timeout: float = 10, match=None) -> dict:
        for i, frame in enumerate(self.backlog):
            if frame["type"] == frame_type and (match is None or match(frame)):
                return self.backlog.pop(i)
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame["type"] == frame_type and (match is None or match(frame)):
                    return frame
                self.backlog.append(frame)

    async def first_of(self, *types: str, timeout: float = 10) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame["type"] in types:
                    return frame
                self.backlog.append(frame)

    async def say(self, conversation: int, body: str, cmid: str | None = None) -> dict:
        cmid = cmid or str(uuid.uuid4())
        await self.send(type="message.send", conversation=conversation, client_msg_id=cmid, body=body)
        return await self.recv("message.ack", match=lambda f: f["client_msg_id"] == cmid)

    async def close(self) -> None:
        await self.ws.close()


async def test_full_flow_across_two_daphne_processes(daphne_servers, make_user, token_for):
    left, right = await asyncio.to_thread(daphne_servers, 2)
    mk = database_sync_to_async(make_user)
    tok = database_sync_to_async(token_for)
    yp_user, co1_user, co2_user, outsider_user = (
        await mk(Role.YOUNG_PERSON), await mk(Role.COUNSELLOR), await mk(Role.COUNSELLOR), await mk(Role.YOUNG_PERSON)
    )
    yp = await Client.open(left, await tok(yp_user), "yp")
    co1 = await Client.open(right, await tok(co1_user), "co1")
    co2 = await Client.open(left, await tok(co2_user), "co2")

    await yp.send(type="session.request", topic="sleep", body="I can't sleep and my head is loud")
    queued = await yp.recv("session.queued")
    assert queued["position"] == 1
    conv, sid = queued["conversation"], queued["session"]
    for co in (co1, co2):
        await co.send(type="counsellor.status", status="available")
        await co.recv("counsellor.status", match=lambda f: "ref" in f)

    # Two counsellors on different processes race for the one request.
    await asyncio.gather(co1.send(type="session.accept"), co2.send(type="session.accept"))
    results = [await co1.first_of("session.assigned", "error"), await co2.first_of("session.assigned", "error")]
    winners = [r for r in results if r["type"] == "session.assigned"]
    losers = [r for r in results if r["type"] == "error"]
    assert len(winners) == 1 and len(losers) == 1, results
    assert losers[0]["code"] in ("queue_empty", "conflict")
    co, co_user = (co1, co1_user) if results[0]["type"] == "session.assigned" else (co2, co2_user)
    assigned = await yp.recv("session.assigned")
    assert assigned["session"] == sid and assigned["counsellor"]["id"] == co_user.id

    # Conversation across processes, with risk shown to the counsellor only.
    ack = await yp.say(conv, "it's been weeks")
    got = await co.recv("message.new", match=lambda f: f["id"] == ack["id"])
    assert got["seq"] == ack["seq"] and got["risk"]["level"] == "none"
    await co.send(type="typing", conversation=conv, state=True)
    assert (await yp.recv("typing"))["state"] is True
    reply = await co.say(conv, "That sounds exhausting. What's keeping you up?")
    mine = await yp.recv("message.new", match=lambda f: f["id"] == reply["id"])
    assert "risk" not in mine

    # Phone drops out mid-sentence: the young person's retry after reconnecting must not duplicate.
    lost_cmid = str(uuid.uuid4())
    await yp.send(type="message.send", conversation=conv, client_msg_id=lost_cmid, body="I keep thinking about")
    held_seq = mine["seq"]
    await yp.close()
    sent = [await co.say(conv, f"I'm still here ({i})") for i in range(3)]
    yp = await Client.open(right, await tok(yp_user), "yp-again")  # the other process this time
    retry = await yp.say(conv, "I keep thinking about", lost_cmid)
    assert retry["duplicate"] in (True, False)
    await yp.send(type="sync", conversation=conv, after_seq=held_seq)
    replay = await yp.recv("sync.result")
    seqs = [m["seq"] for m in replay["messages"]]
    assert seqs == list(range(held_seq + 1, replay["last_seq"] + 1))  # no gap
    assert len(seqs) == len(set(seqs))
    bodies = [m["body"] for m in replay["messages"]]
    assert bodies.count("I keep thinking about") == 1  # no duplicate
    assert {s["seq"] for s in sent} <= set(seqs)
    assert await database_sync_to_async(Message.objects.filter(client_msg_id=lost_cmid).count)() == 1

    # Errors over a real socket.
    await yp.send(type="message.send", conversation=conv, client_msg_id=str(uuid.uuid4()), body="x" * 4001)
    assert (await yp.recv("error"))["code"] == "body_too_long"
    await yp.send(type="session.accept")
    assert (await yp.recv("error"))["code"] == "wrong_role"

    # A third user on either process can neither read nor write nor hear.
    outsider = await Client.open(left, await tok(outsider_user), "outsider")
    await outsider.send(type="sync", conversation=conv, after_seq=0)
    assert (await outsider.recv("error"))["code"] == "not_participant"
    await outsider.send(type="message.send", conversation=conv, client_msg_id=str(uuid.uuid4()), body="hi")
    assert (await outsider.recv("error"))["code"] == "not_participant"

    # End, then feedback.
    await co.send(type="session.end", session=sid, reason="agreed next steps")
    ended = await yp.recv("session.ended")
    assert ended["feedback_requested"] is True and ended["end_reason"] == "agreed next steps"
    await yp.send(type="feedback.send", session=sid, rating=5, comment="thank you")
    assert (await yp.recv("feedback.ok"))["session"] == sid
    await outsider.send(type="ping")
    await outsider.recv("pong")
    assert not [f for f in outsider.backlog if f.get("conversation") == conv]
    for c in (yp, co1, co2, outsider):
        await c.close()
