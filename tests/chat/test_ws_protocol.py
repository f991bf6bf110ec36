"""The chat websocket protocol, driven with WebsocketCommunicator (both test paths)."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async

from accounts.models import Role
from chat.models import CaseNote, Feedback, Message, Session, TranscriptAccess
from tests.chat.helpers import Peer, make

pytestmark = [pytest.mark.django_db(transaction=True)]

db = database_sync_to_async


async def _pair(make_user, token_for, *, body="I've been feeling low", topic="school"):
    """A young person with an assigned counsellor; returns (yp, co, assigned frame)."""
    yp = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    co = await Peer.open(await make(make_user, Role.COUNSELLOR), token_for)
    queued = await yp.call("session.queued", type="session.request", topic=topic, body=body)
    await co.call("counsellor.status", type="counsellor.status", status="available")
    await co.send(type="session.accept")
    assigned = await co.recv("session.assigned")
    await yp.recv("session.assigned")
    assert assigned["session"] == queued["session"]
    return yp, co, assigned


async def test_full_flow_request_to_feedback(make_user, token_for):
    yp = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    co = await Peer.open(await make(make_user, Role.COUNSELLOR), token_for)
    queued = await yp.call("session.queued", type="session.request", topic="exams", body="I can't sleep before exams", ref="r1")
    assert queued["position"] == 1 and queued["eta_s"] > 0 and queued["ref"] == "r1"
    assert queued["self_help"] and queued["crisis_resources"] and not queued["outside_hours"]
    conv = queued["conversation"]

    status = await co.call("counsellor.status", type="counsellor.status", status="available")
    assert status["status"] == "available" and status["capacity"] == 3
    snapshot = await co.call("queue.snapshot", type="queue.list")
    assert snapshot["queue"][0]["session"] == queued["session"] and snapshot["queue"][0]["risk_level"] == "none"

    await co.send(type="session.accept")
    assigned_co = await co.recv("session.assigned")
    assigned_yp = await yp.recv("session.assigned")
    assert assigned_co["conversation"] == assigned_yp["conversation"] == conv
    assert assigned_yp["counsellor"]["id"] == co.user.id and "risk_level" not in assigned_yp
    assert assigned_co["risk_level"] == "none"

    # The counsellor catches up with the opening message from the database.
    sync = await co.call("sync.result", type="sync", conversation=conv, after_seq=0)
    assert [m["seq"] for m in sync["messages"]] == [1, 2]
    assert sync["messages"][0]["body"] == "I can't sleep before exams" and "risk" in sync["messages"][0]
    assert sync["messages"][1]["kind"] == "system"

    ack = await yp.say(conv, "hello?")
    assert ack["seq"] == 3 and ack["duplicate"] is False
    new_co = await co.recv("message.new")
    new_yp = await yp.recv("message.new")
    assert new_co["seq"] == new_yp["seq"] == 3 and new_co["body"] == "hello?"
    assert new_co["risk"]["level"] == "none" and "risk" not in new_yp

    await co.send(type="typing", conversation=conv, state=True)
    typing = await yp.recv("typing")
    assert typing == {"type": "typing", "conversation": conv, "user": co.user.id, "state": True}

    ack2 = await co.say(conv, "Hi, I'm here. What's on your mind?")
    assert ack2["seq"] == 4
    assert (await yp.recv("message.new"))["sender_role"] == "counsellor"
    ok = await yp.call("read.ok", type="read", conversation=conv, seq=4)
    assert ok["seq"] == 4
    assert (await co.recv("read")) == {"type": "read", "conversation": conv, "user": yp.user.id, "seq": 4}

    note = await co.call("note.added", type="note.add", session=queued["session"], body="Exam stress, no risk indicators.")
    assert await db(CaseNote.objects.filter(pk=note["id"]).exists)()

    await co.send(type="session.end", session=queued["session"], reason="resolved")
    ended_yp = await yp.recv("session.ended")
    ended_co = await co.recv("session.ended")
    assert ended_yp["state"] == ended_co["state"] == "ended"
    assert ended_yp["end_reason"] == "resolved" and ended_yp["feedback_requested"] is True
    err = await yp.error(type="message.send", conversation=conv, client_msg_id=str(uuid.uuid4()), body="still there?")
    assert err["code"] == "session_closed"

    fb = await yp.call("feedback.ok", type="feedback.send", session=queued["session"], rating=5, comment="Helped a lot")
    saved = await db(Feedback.objects.get)(pk=fb["id"])
    assert saved.rating == 5
    again = await yp.error(type="feedback.send", session=queued["session"], rating=4)
    assert again["code"] == "conflict"
    for peer in (yp, co):
        await peer.close()


async def test_duplicate_client_msg_id_gets_the_same_ack(make_user, token_for):
    yp, co, assigned = await _pair(make_user, token_for)
    conv = assigned["conversation"]
    cmid = str(uuid.uuid4())
    first = await yp.say(conv, "only once", cmid)
    second = await yp.say(conv, "only once", cmid)
    assert (first["seq"], first["id"]) == (second["seq"], second["id"])
    assert second["duplicate"] is True
    assert await db(Message.objects.filter(client_msg_id=cmid).count)() == 1
    await co.until("message.new", lambda f: f.get("client_msg_id") == cmid)
    again = [f for f in await co.drain() if f["type"] == "message.new" and f.get("client_msg_id") == cmid]
    assert again == []  # pushed once, not once per retry


async def test_disconnect_mid_conversation_then_resync_without_gap_or_duplicate(make_user, token_for):
    yp, co, assigned = await _pair(make_user, token_for)
    conv = assigned["conversation"]
    seen = {}
    for m in (await yp.call("sync.result", type="sync", conversation=conv, after_seq=0))["messages"]:
        seen[m["seq"]] = m["id"]
    for text in ("one", "two"):
        ack = await yp.say(conv, text)
        seen[ack["seq"]] = ack["id"]
    await yp.close()  # phone drops out mid-conversation
    for text in ("are you there?", "take your time", "I'll wait"):
        await co.say(conv, text)
    yp2 = Peer(yp.user, None)
    yp2 = await Peer.open(yp.user, token_for)  # back on another device, same login
    last = max(seen)
    replay = await yp2.call("sync.result", type="sync", conversation=conv, after_seq=last)
    seqs = [m["seq"] for m in replay["messages"]]
    assert seqs == list(range(last + 1, last + 4)) and replay["last_seq"] == last + 3
    assert [m["body"] for m in replay["messages"]] == ["are you there?", "take your time", "I'll wait"]
    assert not set(seqs) & set(seen)
    # Paging: limit 1 says there is more.
    page = await yp2.call("sync.result", type="sync", conversation=conv, after_seq=0, limit=1)
    assert len(page["messages"]) == 1 and page["has_more"] is True


async def test_every_error_code(make_user, token_for, settings):
    settings.CHAT_MESSAGE_RATE = 4  # the request's opening message counts: three more fit
    # A long sliding window keeps every send below in it, however slow the machine.
    settings.CHAT_MESSAGE_RATE_WINDOW_S = 3600
    yp, co, assigned = await _pair(make_user, token_for)
    conv = assigned["conversation"]

    await yp.send_raw("{not json")
    assert (await yp.recv("error"))["code"] == "invalid_json"
    await yp.send_raw("[1, 2]")
    assert (await yp.recv("error"))["code"] == "invalid_frame"
    assert (await yp.error(type="nope.nothing", ref="x"))["code"] == "unknown_type"
    await yp.send_raw('{"type": "message.send", "body": "' + "a" * 70_000 + '"}')
    assert (await yp.recv("error"))["code"] == "frame_too_large"
    cmid = str(uuid.uuid4())
    err = await yp.error(type="message.send", conversation=conv, client_msg_id=cmid, body="x" * 4001)
    assert err == {"type": "error", "code": "body_too_long", "detail": err["detail"], "ref": cmid}
    assert (await yp.error(type="message.send", conversation=conv, client_msg_id="not-a-uuid", body="hi"))["code"] == "validation_error"
    assert (await yp.error(type="message.send", conversation=conv, client_msg_id=str(uuid.uuid4()), body="   "))["code"] == "validation_error"
    assert (await yp.error(type="session.accept"))["code"] == "wrong_role"
    assert (await co.error(type="session.request", body="hi"))["code"] == "wrong_role"
    assert (await yp.error(type="sync", conversation=conv + 999))["code"] == "not_participant"
    assert (await yp.error(type="session.end", session=assigned["session"] + 999))["code"] == "not_participant"

    # Per-user message rate (service), explicit, and the refused message can be retried later.
    await yp.drain()
    for i in range(5):
        await yp.send(type="message.send", conversation=conv, client_msg_id=str(uuid.uuid4()), body=f"m{i}")
    replies = await yp.collect(5, ("message.ack", "error"))
    assert [f.get("code", f["type"]) for f in replies] == ["message.ack"] * 3 + ["rate_limited"] * 2

    co2 = await Peer.open(await make(make_user, Role.COUNSELLOR), token_for)
    assert (await co2.error(type="session.accept"))["code"] == "not_available"
    await co2.call("counsellor.status", type="counsellor.status", status="available", capacity=1)
    assert (await co2.error(type="session.accept"))["code"] == "queue_empty"
    assert (await co2.error(type="session.accept", session=assigned["session"]))["code"] == "conflict"
    assert (await co2.error(type="session.accept", session=assigned["session"] + 999))["code"] == "not_found"
    assert (await co2.error(type="counsellor.status", status="sleeping"))["code"] == "validation_error"
    other = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    await other.call("session.queued", type="session.request", body="hello")
    await co2.send(type="session.accept")
    await co2.recv("session.assigned")
    third = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    await third.call("session.queued", type="session.request", body="hello too")
    assert (await co2.error(type="session.accept"))["code"] == "at_capacity"

    # Frame rate limit (per socket): explicit error, never a silent drop.
    for _ in range(40):
        await third.send(type="ping")
    frames = await third.collect(40, ("pong", "error"))
    assert any(f.get("code") == "rate_limited" for f in frames)
    assert len(frames) == 40  # one answer per frame


async def test_a_third_user_can_neither_read_nor_write_nor_hear(make_user, token_for):
    yp, co, assigned = await _pair(make_user, token_for)
    conv, sid = assigned["conversation"], assigned["session"]
    intruders = [
        await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for),
        await Peer.open(await make(make_user, Role.COUNSELLOR), token_for),
    ]
    for bad in intruders:
        for frame in (
            {"type": "sync", "conversation": conv, "after_seq": 0},
            {"type": "message.send", "conversation": conv, "client_msg_id": str(uuid.uuid4()), "body": "let me in"},
            {"type": "typing", "conversation": conv, "state": True},
            {"type": "read", "conversation": conv, "seq": 1},
            {"type": "session.end", "session": sid},
        ):
            assert (await bad.error(**frame))["code"] == "not_participant", frame
    assert (await intruders[0].error(type="feedback.send", session=sid, rating=1))["code"] == "not_participant"
    assert (await intruders[1].error(type="note.add", session=sid, body="snoop"))["code"] == "not_participant"
    assert (await intruders[1].error(type="session.transfer", session=sid, to=intruders[1].user.id))["code"] == "not_participant"
    await yp.say(conv, "private words")
    await co.say(conv, "private reply")
    for bad in intruders:
        leaked = [f for f in await bad.drain() if f.get("conversation") == conv]
        assert leaked == []
    assert await db(Message.objects.filter(body="let me in").exists)() is False


async def test_risky_message_escalates_and_only_staff_see_the_risk(make_user, token_for):
    from triage.models import Escalation

    yp, co, assigned = await _pair(make_user, token_for)
    conv = assigned["conversation"]
    ack = await yp.say(conv, "I want to kill myself tonight")
    to_co = await co.recv("message.new")
    assert to_co["id"] == ack["id"] and to_co["risk"]["level"] in ("high", "imminent") and to_co["risk"]["evidence"]
    to_yp = await yp.recv("message.new")
    assert "risk" not in to_yp
    system = await yp.recv("message.new")
    assert system["kind"] == "system" and system["sender"] is None and system["seq"] == ack["seq"] + 1
    assert "116 123" in system["body"]
    esc = await db(Escalation.objects.get)(source_type="chat_message", source_id=ack["id"])
    assert esc.conversation_id == conv and esc.young_person_id == yp.user.id
    replay = await yp.call("sync.result", type="sync", conversation=conv, after_seq=0)
    assert all("risk" not in m for m in replay["messages"])


async def test_queue_is_ordered_by_risk_then_wait_and_positions_are_pushed(make_user, token_for):
    calm = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    low = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    urgent = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    q1 = await calm.call("session.queued", type="session.request", body="just want to chat")
    q2 = await low.call("session.queued", type="session.request", body="I feel hopeless")
    q3 = await urgent.call("session.queued", type="session.request", body="I want to kill myself tonight")
    assert (q1["position"], q2["position"], q3["position"]) == (1, 1, 1)
    # Pushed, not polled: the calm request drops to third as riskier ones arrive.
    await calm.until("session.position", lambda f: f["position"] == 3)
    co = await Peer.open(await make(make_user, Role.COUNSELLOR), token_for)
    await co.call("counsellor.status", type="counsellor.status", status="available")
    await co.send(type="session.accept")
    assert (await co.recv("session.assigned"))["session"] == q3["session"]
    await co.send(type="session.accept")
    assert (await co.recv("session.assigned"))["session"] == q2["session"]
    await calm.until("session.position", lambda f: f["position"] == 1)


async def test_quick_exit_and_come_back_to_the_same_place(make_user, token_for):
    others = [await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for) for _ in range(2)]
    for p in others:
        await p.call("session.queued", type="session.request", body="hi")
    user = await make(make_user, Role.YOUNG_PERSON)
    yp = await Peer.open(user, token_for)
    queued = await yp.call("session.queued", type="session.request", topic="home", body="things at home")
    assert queued["position"] == 3
    await yp.close()
    token = await db(token_for)(user)
    from tests.conftest import ws_open

    comm = await ws_open(token)
    state = await comm.receive_json_from()
    assert state["type"] == "chat.state" and state["session"] == queued["session"] and state["position"] == 3
    back = Peer(user, comm)
    again = await back.call("session.queued", type="session.request", body="hello again")
    assert again["session"] == queued["session"] and again["resumed"] is True
    await back.send(type="session.cancel", session=queued["session"])
    ended = await back.recv("session.ended")
    assert ended["state"] == "cancelled" and ended["feedback_requested"] is False
    assert (await db(Session.objects.get)(pk=queued["session"])).state == "cancelled"


async def test_outside_operating_hours_is_accepted_honestly(make_user, token_for, settings):
    settings.CHAT_OPERATING_HOURS = {"days": [], "open": "09:00", "close": "17:00"}
    yp = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    queued = await yp.call("session.queued", type="session.request", body="anyone there?")
    assert queued["outside_hours"] is True and "not online" in queued["notice"] and queued["crisis_resources"]


async def test_warm_transfer_keeps_the_conversation(make_user, token_for):
    yp, co, assigned = await _pair(make_user, token_for)
    conv, sid = assigned["conversation"], assigned["session"]
    await yp.say(conv, "before transfer")
    sup = await Peer.open(await make(make_user, Role.SUPERVISOR), token_for)
    await co.send(type="session.transfer", session=sid, to=sup.user.id, note="Needs a senior: exam stress + family")
    to_sup = await sup.recv("session.transferred")
    to_yp = await yp.recv("session.transferred")
    assert to_sup["note"].startswith("Needs a senior") and "note" not in to_yp
    assert to_yp["counsellor"]["id"] == sup.user.id and to_yp["conversation"] == conv
    history = await sup.call("sync.result", type="sync", conversation=conv, after_seq=0)
    assert "before transfer" in [m["body"] for m in history["messages"]]
    ack = await sup.say(conv, "Hi, I'm taking over")
    assert ack["seq"] == history["last_seq"] + 1 or ack["seq"] > history["last_seq"]
    gone = await co.error(type="message.send", conversation=conv, client_msg_id=str(uuid.uuid4()), body="hi")
    assert gone["code"] == "not_participant"
    # The first counsellor keeps the transcript they took part in.
    assert (await co.call("sync.result", type="sync", conversation=conv, after_seq=0))["messages"]
    # ... and no audit row: the supervisor is a participant now.
    assert await db(TranscriptAccess.objects.count)() == 0


async def test_supervisor_sees_everything_and_reads_are_audited(make_user, token_for):
    yp, co, assigned = await _pair(make_user, token_for)
    sup = await Peer.open(await make(make_user, Role.SUPERVISOR), token_for)
    live = await sup.call("sessions.live", type="sessions.live")
    assert [s["session"] for s in live["sessions"]] == [assigned["session"]]
    await sup.call("sync.result", type="sync", conversation=assigned["conversation"], after_seq=0)
    audit = await db(list)(TranscriptAccess.objects.values_list("actor_id", "conversation_id", "via"))
    assert audit == [(sup.user.id, assigned["conversation"], "ws")]
    await co.send(type="session.end", session=assigned["session"], reason="done")
    ended = await sup.recv("session.ended")
    assert ended["session"] == assigned["session"] and ended["young_person"]["id"] == yp.user.id


async def test_read_receipts_can_be_turned_off_by_the_young_person(make_user, token_for):
    yp, co, assigned = await _pair(make_user, token_for)
    conv = assigned["conversation"]
    assert (await yp.call("read.receipts", type="read.receipts", enabled=False))["enabled"] is False
    await co.say(conv, "how are you?")
    ok = await yp.call("read.ok", type="read", conversation=conv, seq=99)
    assert ok["seq"] <= 99
    assert [f for f in await co.drain() if f["type"] == "read"] == []
    # Counsellor receipts are always shared.
    await co.send(type="read", conversation=conv, seq=1)
    assert (await yp.recv("read"))["user"] == co.user.id


async def test_supervisor_can_observe_live_but_not_write(make_user, token_for):
    yp, co, assigned = await _pair(make_user, token_for)
    conv, sid = assigned["conversation"], assigned["session"]
    sup = await Peer.open(await make(make_user, Role.SUPERVISOR), token_for)
    watching = await sup.call("session.observing", type="session.observe", session=sid)
    assert watching["on"] is True and watching["conversation"] == conv
    ack = await yp.say(conv, "I argued with my mum")
    seen = await sup.recv("message.new")
    assert seen["id"] == ack["id"] and "risk" in seen
    denied = await sup.error(type="message.send", conversation=conv, client_msg_id=str(uuid.uuid4()), body="hi")
    assert denied["code"] == "not_participant"
    audit = await db(list)(TranscriptAccess.objects.values_list("via", flat=True))
    assert audit == ["observe"]
    await sup.call("sync.result", type="sync", conversation=conv, after_seq=0)
    assert await db(TranscriptAccess.objects.count)() == 2  # an observer's reads are audited too
    assert (await yp.error(type="session.observe", session=sid))["code"] == "wrong_role"
    stopped = await sup.call("session.observing", type="session.observe", session=sid, on=False)
    assert stopped["on"] is False
    await co.say(conv, "That sounds hard")
    assert [f for f in await sup.drain() if f["type"] == "message.new"] == []
