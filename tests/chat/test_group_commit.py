"""Group commit on the event loop's send path (chat.services._GroupCommit).

Messages that arrive while CHAT_SEND_TRANSACTIONS transactions are in flight wait and are
stored together in the next one, in the same two round trips a single message takes. These
hold the first transaction at its opening round trip, let others queue behind it, and check
over the websocket protocol on PostgreSQL that each waiting message is stored, acknowledged,
pushed and refused exactly as it would be alone.
"""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from accounts.models import Role
from chat import services
from chat.models import Message
from tests.chat.helpers import Peer, chat_pair, is_prepare, make, sent_text

pytestmark = [pytest.mark.real]

db = database_sync_to_async


@pytest.fixture
def one_in_flight():
    """One transaction in flight per loop, and a fresh _GroupCommit for this test's loop."""
    services._GroupCommit._by_loop.clear()
    with override_settings(CHAT_SEND_TRANSACTIONS=1):
        yield
    services._GroupCommit._by_loop.clear()


class Held:
    """The round trips sent on the loop once armed (their texts), the first held until
    released."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.armed = False
        self.released = asyncio.Event()
        self.fail = None  # a query -> whether its answer is lost after the server ran it

    def arm(self) -> None:
        self.armed = True

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def held(monkeypatch):
    original = psycopg.AsyncClientCursor.execute
    gate = Held()

    async def gated(self, query, params=None, **kwargs):
        if gate.armed and not is_prepare(query):  # a connection's first use prepares its statements
            gate.sent.append(sent_text(query))
            if len(gate.sent) == 1:
                await gate.released.wait()
            result = await original(self, query, params, **kwargs)
            if gate.fail is not None and gate.fail(sent_text(query)):
                raise psycopg.OperationalError("connection lost")
            return result
        return await original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.AsyncClientCursor, "execute", gated)
    return gate


async def _until(condition, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still not {what}")


async def _until_held(held: Held) -> None:
    """Until the first transaction is in flight, held at its opening round trip."""
    await _until(lambda: held.sent, "held")


async def _until_waiting(count: int) -> None:
    commits = services._GroupCommit.for_loop()
    await _until(lambda: len(commits.waiting) >= count, f"{count} waiting")


async def _send(peer: Peer, conversation: int, body: str, cmid: str | None = None) -> None:
    await peer.send(type="message.send", conversation=conversation, client_msg_id=cmid or str(uuid.uuid4()), body=body)


async def _close(*peers: Peer) -> None:
    for peer in peers:
        await peer.close()


async def test_messages_waiting_behind_a_transaction_share_the_next(make_user, token_for, thread_sends, one_in_flight,
                                                                    held):
    pairs = [await chat_pair(make_user, token_for) for _ in range(4)]
    held.arm()
    for n, (yp, _, conv) in enumerate(pairs):
        await _send(yp, conv, f"a message in {conv}")
        if n == 0:
            await _until_held(held)
    await _until_waiting(3)
    held.release()
    for yp, co, conv in pairs:
        ack = await yp.recv("message.ack")
        new = await co.recv("message.new")
        assert new["id"] == ack["id"] and ack["duplicate"] is False and ack["seq"] == 3
        stored = await db(Message.objects.get)(pk=ack["id"])
        assert stored.conversation_id == conv and stored.seq == 3 and stored.assessment_id is not None
    # Two transactions of two round trips each: the held one, then the three waiting together.
    sent = held.sent
    assert len(sent) == 4 and sent[0].count("FOR UPDATE") == 1 and sent[2].count("FOR UPDATE") == 3
    assert sent[1].endswith("; COMMIT") and sent[3].endswith("; COMMIT") and sent[3].count("INSERT") == 6
    assert thread_sends == []
    await _close(*(peer for yp, co, _ in pairs for peer in (yp, co)))


async def test_two_messages_of_one_conversation_go_in_turn(make_user, token_for, thread_sends, one_in_flight, held):
    (yp, co, conv), (other, other_co, other_conv) = [await chat_pair(make_user, token_for) for _ in range(2)]
    held.arm()
    await _send(other, other_conv, "held")
    await _until_held(held)
    await _send(yp, conv, "from the young person")
    await _send(co, conv, "from the counsellor")
    await _until_waiting(2)
    held.release()
    acks = [await yp.recv("message.ack"), await co.recv("message.ack")]
    assert sorted(ack["seq"] for ack in acks) == [3, 4]
    assert (await other.recv("message.ack"))["seq"] == 3
    assert len(held.sent) == 6  # held; one of the two; the other: one conversation per transaction
    seqs = await db(lambda: list(Message.objects.filter(conversation_id=conv).order_by("seq").values_list("seq", flat=True)))()
    assert seqs == [1, 2, 3, 4]
    assert thread_sends == []
    await _close(yp, co, other, other_co)


async def test_a_refusal_answers_its_own_message_only(make_user, token_for, thread_sends, one_in_flight, held):
    (yp, co, conv), (other, other_co, other_conv) = [await chat_pair(make_user, token_for) for _ in range(2)]
    stranger = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    held.arm()
    await _send(other, other_conv, "held")
    await _until_held(held)
    await _send(stranger, other_conv, "let me in")
    await _send(yp, other_conv + 10**6, "nowhere")  # no such conversation: refused too
    await _send(co, conv, "hello")
    await _until_waiting(3)
    held.release()
    assert (await stranger.recv("error"))["code"] == "not_participant"
    assert (await yp.recv("error"))["code"] == "not_participant"
    ack = await co.recv("message.ack")
    assert (await yp.recv("message.new"))["id"] == ack["id"]
    assert len(held.sent) == 4 and held.sent[2].count("FOR UPDATE") == 3 and held.sent[3].count("INSERT") == 1
    assert await db(Message.objects.filter(body__in=["let me in", "nowhere"]).count)() == 0
    assert thread_sends == []
    await _close(yp, co, other, other_co, stranger)


async def test_a_failed_transaction_hands_every_message_over_and_stores_each_once(
        make_user, token_for, thread_sends, one_in_flight, held):
    """The batch's COMMIT went through but its answer was lost: every message is handed to
    message_send, which finds each stored and acknowledges it; none is stored twice."""
    pairs = [await chat_pair(make_user, token_for) for _ in range(3)]
    held.fail = lambda query: query.endswith("; COMMIT") and query.count("INSERT") > 2
    held.arm()
    cmids = [str(uuid.uuid4()) for _ in pairs]
    for n, ((yp, _, conv), cmid) in enumerate(zip(pairs, cmids, strict=True)):
        await _send(yp, conv, "did this arrive", cmid)
        if n == 0:
            await _until_held(held)
    await _until_waiting(2)
    held.release()
    acks = [await yp.recv("message.ack") for yp, _, _ in pairs]
    assert [ack["duplicate"] for ack in acks] == [False, True, True]
    assert len(thread_sends) == 2
    for cmid in cmids:
        assert await db(Message.objects.filter(client_msg_id=cmid).count)() == 1
    await _close(*(peer for yp, co, _ in pairs for peer in (yp, co)))


async def test_a_sender_gone_mid_transaction_is_still_stored_and_pushed(make_user, token_for, thread_sends,
                                                                        one_in_flight, held):
    """The transaction is not the sender's task: closing the socket while its message is
    being stored neither cancels the store nor the other side's push."""
    yp, co, conv = await chat_pair(make_user, token_for)
    held.arm()
    cmid = str(uuid.uuid4())
    await _send(yp, conv, "are you still there", cmid)
    await _until_held(held)
    await yp.comm.disconnect()
    held.release()
    new = await co.recv("message.new")
    assert new["client_msg_id"] == cmid
    assert await db(Message.objects.filter(client_msg_id=cmid).count)() == 1
    assert thread_sends == []
    await co.comm.disconnect()


async def test_pushes_reach_a_socket_while_its_own_send_is_stored(make_user, token_for, thread_sends, held):
    """A counsellor whose own message is being stored still gets the young person's new
    message at once (api.consumers.ClientConsumer.dispatch): pushes do not wait behind the
    socket's send. The counsellor's next frame does: it is answered after the send's ack."""
    yp, co, conv = await chat_pair(make_user, token_for)
    held.arm()
    await _send(co, conv, "held: the counsellor's message")
    await _until_held(held)
    ack = await yp.say(conv, "the young person's message, stored meanwhile")
    new = await co.recv("message.new")
    assert new["id"] == ack["id"] and not held.released.is_set()
    await co.send(type="ping", ref="after")
    assert await co.drain(0.2) == []  # no pong yet: the ping waits for the held send
    held.release()
    frames = await co.collect(2, ("message.ack", "pong"))
    assert [frame["type"] for frame in frames] == ["message.ack", "pong"] and frames[1]["ref"] == "after"
    assert frames[0]["seq"] == ack["seq"] + 1
    assert thread_sends == []
    await _close(yp, co)
