"""message.send on the event loop (chat.services.message_send_on_loop, config/loopdb.py).

The common case runs on the loop with its own async connection; every other case is
handed to message_send in a worker thread. These check, over the websocket protocol on
PostgreSQL, that the loop path stores exactly what message_send would, refuses what it
would, and hands over everything else (escalations, queue moves, retries, database
errors) without losing or doubling a message.
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
from chat.models import Conversation, Message, Session
from config import loopdb
from tests.chat.helpers import Peer, chat_pair, is_prepare, make, sent_text
from triage.models import Assessment, Escalation

pytestmark = [pytest.mark.real]

db = database_sync_to_async


@db
def _stored(message_id):
    message = Message.objects.select_related("assessment").get(pk=message_id)
    return message, message.assessment, Conversation.objects.get(pk=message.conversation_id)


async def test_young_persons_message_is_stored_triaged_and_pushed_on_the_loop(make_user, token_for, thread_sends):
    yp, co, conv = await chat_pair(make_user, token_for)
    cmid = str(uuid.uuid4())
    ack = await yp.say(conv, "I feel really low and alone", cmid=cmid)
    assert ack["duplicate"] is False and ack["seq"] == 3 and ack["client_msg_id"] == cmid
    new = await co.recv("message.new")
    assert new["id"] == ack["id"] and new["body"] == "I feel really low and alone"
    assert new["risk"]["level"] == "none" and new["sender_role"] == Role.YOUNG_PERSON
    assert thread_sends == []

    message, assessment, conversation = await _stored(ack["id"])
    assert (message.seq, message.sender_id, message.kind, str(message.client_msg_id)) == (3, yp.user.id, "text", cmid)
    assert conversation.last_seq == 3 and conversation.last_activity_at == message.sent_at
    assert assessment.source_type == "chat_message" and assessment.source_id == message.id
    assert assessment.author_id == yp.user.id and assessment.conversation_id == conv
    assert assessment.model_state == "pending" and assessment.model_dispatched_at is None  # dispatch off in tests
    await yp.comm.disconnect()
    await co.comm.disconnect()


async def test_counsellors_message_carries_no_assessment(make_user, token_for, thread_sends):
    yp, co, conv = await chat_pair(make_user, token_for)
    ack = await co.say(conv, "Hi, I'm here. What's on your mind?")
    new = await yp.recv("message.new")
    assert new["id"] == ack["id"] and "risk" not in new and new["sender_name"]
    message, assessment, _ = await _stored(ack["id"])
    assert assessment is None and message.sender_role == Role.COUNSELLOR
    assert thread_sends == []
    await yp.comm.disconnect()
    await co.comm.disconnect()


async def test_loop_and_thread_store_the_same_rows(make_user, token_for, thread_sends):
    yp, co, conv = await chat_pair(make_user, token_for)
    on_loop = await yp.say(conv, "I feel so hopeless, nothing matters anymore")
    with override_settings(CHAT_SEND_ON_LOOP=False):
        in_thread = await yp.say(conv, "I feel so hopeless, nothing matters anymore")
    assert len(thread_sends) == 1

    (m1, a1, _), (m2, a2, _) = await _stored(on_loop["id"]), await _stored(in_thread["id"])
    skip = {"id", "seq", "client_msg_id", "sent_at", "assessment_id", "source_id", "created_at", "model_dispatched_at",
            "updated_at"}

    def columns(row):
        return {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields if f.attname not in skip}

    assert columns(m1) == columns(m2)
    assert columns(a1) == columns(a2)
    assert a1.level == "moderate" and a1.action == "review"
    await yp.comm.disconnect()
    await co.comm.disconnect()


@pytest.fixture
def sent(monkeypatch) -> list[bytes]:
    """Every query the event loop's send path hands to psycopg from here on, in order."""
    queries: list[bytes] = []
    original = psycopg.AsyncClientCursor.execute

    async def counted(self, query, params=None, **kwargs):
        queries.append(query)
        return await original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.AsyncClientCursor, "execute", counted)
    return queries


async def test_two_round_trips_per_message(make_user, token_for, sent):
    yp, co, conv = await chat_pair(make_user, token_for)
    await yp.say(conv, "still here")
    texts = [sent_text(query) for query in sent if not is_prepare(query)]
    assert len(texts) == 2
    assert texts[0].startswith("BEGIN; SELECT") and texts[1].endswith("; COMMIT")
    await yp.comm.disconnect()
    await co.comm.disconnect()


async def test_statements_are_prepared_once_per_connection(make_user, token_for, sent):
    """With CHAT_LOOP_DB_PREPARE the statements with parameters run as EXECUTEs of
    statements the connection prepared the first time it met them: later messages on the
    same connection send no PREPARE and no statement text, just the arguments."""
    yp, co, conv = await chat_pair(make_user, token_for)
    loopdb.close_all()  # a fresh connection: its first message prepares
    first = await yp.say(conv, "first")
    assert [is_prepare(query) for query in sent] == [True, False, True, False]  # read's, then the writes'
    sent.clear()
    second = await yp.say(conv, "second")
    assert second["seq"] == first["seq"] + 1
    assert len(sent) == 2 and not any(is_prepare(query) for query in sent)
    assert sent[0].startswith(b"BEGIN; EXECUTE loopdb_") and b"SELECT" not in sent[0]
    assert sent[1].endswith(b"; COMMIT") and b"INSERT" not in sent[1] and sent[1].count(b"EXECUTE loopdb_") == 3
    stored = await db(lambda: list(Message.objects.filter(conversation_id=conv, seq__gte=first["seq"])
                                   .order_by("seq").values_list("body", "assessment__level")))()
    assert stored == [("first", "none"), ("second", "none")]
    await yp.comm.disconnect()
    await co.comm.disconnect()


async def test_unprepared_statements_store_the_same(make_user, token_for, sent):
    """CHAT_LOOP_DB_PREPARE off (behind a transaction-mode pooler): the texts go as they are."""
    yp, co, conv = await chat_pair(make_user, token_for)
    with override_settings(CHAT_LOOP_DB_PREPARE=False):
        ack = await yp.say(conv, "no prepared statements")
    assert len(sent) == 2 and not any(b"EXECUTE" in query or b"PREPARE" in query for query in sent)
    new = await co.recv("message.new")
    assert new["id"] == ack["id"] and new["risk"]["level"] == "none"
    await yp.comm.disconnect()
    await co.comm.disconnect()


async def test_escalation_is_handed_to_message_send(make_user, token_for, thread_sends):
    yp, co, conv = await chat_pair(make_user, token_for)
    ack = await yp.say(conv, "I want to kill myself tonight")
    assert len(thread_sends) == 1
    frames = await co.collect(2, ("message.new",))
    assert frames[0]["id"] == ack["id"] and frames[0]["risk"]["level"] == "high"
    assert frames[1]["kind"] == "system"  # the crisis resources, in the same transaction
    assert await db(Escalation.objects.filter(source_type="chat_message", source_id=ack["id"]).exists)()
    await yp.comm.disconnect()
    await co.comm.disconnect()


async def test_retry_is_answered_by_message_send_with_the_stored_message(make_user, token_for, thread_sends):
    yp, co, conv = await chat_pair(make_user, token_for)
    cmid = str(uuid.uuid4())
    first = await yp.say(conv, "hello?", cmid=cmid)
    again = await yp.say(conv, "hello?", cmid=cmid)
    assert again["duplicate"] is True and again["id"] == first["id"] and again["seq"] == first["seq"]
    assert len(thread_sends) == 1
    assert await db(Message.objects.filter(client_msg_id=cmid).count)() == 1
    await yp.comm.disconnect()
    await co.comm.disconnect()


async def test_riskier_words_while_queued_move_the_request_up(make_user, token_for, thread_sends):
    yp = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    queued = await yp.call("session.queued", type="session.request", topic="t", body="hi")
    await yp.say(queued["conversation"], "I feel really low and alone")  # level none: stays
    assert thread_sends == []
    await yp.say(queued["conversation"], "I feel so hopeless, nothing matters anymore")
    assert len(thread_sends) == 1
    session = await db(Session.objects.get)(pk=queued["session"])
    assert session.risk_level == "moderate"
    await yp.comm.disconnect()


async def test_refusals_are_the_same_on_the_loop(make_user, token_for, thread_sends):
    yp, co, conv = await chat_pair(make_user, token_for)
    stranger = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    err = await stranger.error(type="message.send", conversation=conv, client_msg_id=str(uuid.uuid4()), body="hi")
    assert err["code"] == "not_participant"
    err = await stranger.error(type="message.send", conversation=10**9, client_msg_id=str(uuid.uuid4()), body="hi")
    assert err["code"] == "not_participant"
    err = await yp.error(type="message.send", conversation=conv, client_msg_id="not-a-uuid", body="hi")
    assert err["code"] == "validation_error"
    err = await yp.error(type="message.send", conversation=conv, client_msg_id=str(uuid.uuid4()), body="   ")
    assert err["code"] == "validation_error"
    with override_settings(CHAT_MESSAGE_RATE=2):  # the opening message counts
        await yp.say(conv, "one")
        err = await yp.error(type="message.send", conversation=conv, client_msg_id=str(uuid.uuid4()), body="two")
        assert err["code"] == "rate_limited"
    await co.call("session.ended", type="session.end", session=(await db(Session.objects.get)(conversation_id=conv)).id)
    err = await yp.error(type="message.send", conversation=conv, client_msg_id=str(uuid.uuid4()), body="still there?")
    assert err["code"] == "session_closed"
    assert thread_sends == []
    assert await db(Message.objects.filter(conversation_id=conv, body__in=["hi", "two", "still there?"]).count)() == 0
    for peer in (yp, co, stranger):
        await peer.comm.disconnect()


async def test_database_error_hands_over_and_stores_once(make_user, token_for, thread_sends, monkeypatch):
    yp, co, conv = await chat_pair(make_user, token_for)
    loopdb.close_all()
    params = loopdb._connect_params()
    monkeypatch.setattr(loopdb, "_connect_params", lambda: {**params, "port": 1})  # nothing listens there
    ack = await yp.say(conv, "are you there")
    assert ack["duplicate"] is False and len(thread_sends) == 1
    assert (await co.recv("message.new"))["id"] == ack["id"]
    assert await db(Message.objects.filter(conversation_id=conv, body="are you there").count)() == 1
    await yp.comm.disconnect()
    await co.comm.disconnect()


async def test_commit_answer_lost_is_answered_with_the_stored_message(make_user, token_for, thread_sends, monkeypatch):
    """The server committed but the connection failed before its answer: message_send finds
    the stored message and acknowledges it (stored once, never twice)."""
    yp, co, conv = await chat_pair(make_user, token_for)
    original = psycopg.AsyncClientCursor.execute

    async def commit_then_fail(self, query, params=None, **kwargs):
        result = await original(self, query, params, **kwargs)
        if sent_text(query).endswith("; COMMIT"):
            raise psycopg.OperationalError("connection lost")
        return result

    monkeypatch.setattr(psycopg.AsyncClientCursor, "execute", commit_then_fail)
    cmid = str(uuid.uuid4())
    ack = await yp.say(conv, "did this arrive", cmid=cmid)
    assert ack["duplicate"] is True and len(thread_sends) == 1
    assert await db(Message.objects.filter(client_msg_id=cmid).count)() == 1
    await yp.comm.disconnect()
    await co.comm.disconnect()


async def test_model_layer_dispatch_after_commit(make_user, token_for, thread_sends, monkeypatch):
    dispatched: list[list[int]] = []
    monkeypatch.setattr(services, "model_dispatch", dispatched.append)
    yp, co, conv = await chat_pair(make_user, token_for)
    with override_settings(TRIAGE_MODEL_DISPATCH=True, CELERY_TASK_ALWAYS_EAGER=False):
        ack = await yp.say(conv, "I feel really low and alone")
    message, assessment, _ = await _stored(ack["id"])
    assert dispatched == [[assessment.id]] and assessment.model_dispatched_at is not None
    assert thread_sends == []
    await yp.comm.disconnect()
    await co.comm.disconnect()


async def test_off_switch_uses_message_send(make_user, token_for, thread_sends):
    yp, co, conv = await chat_pair(make_user, token_for)
    with override_settings(CHAT_SEND_ON_LOOP=False):
        ack = await yp.say(conv, "hello?")
    assert len(thread_sends) == 1
    assert await db(Assessment.objects.filter(source_type="chat_message", source_id=ack["id"]).exists)()
    await yp.comm.disconnect()
    await co.comm.disconnect()


async def test_connections_open_only_as_concurrent_sends_need_them():
    """CHAT_LOOP_DB_CONNECTIONS is a ceiling, not a count opened up front: one send at a time
    reuses one connection; concurrent ones open up to the ceiling and wait beyond it."""
    opened: list[int] = []
    held, most_held = 0, 0

    async def use(pause: float) -> None:
        nonlocal held, most_held
        async with loopdb.connection() as conn:
            held += 1
            most_held = max(most_held, held)
            opened.append(conn.info.backend_pid)
            await conn.execute("SELECT 1")
            await asyncio.sleep(pause)
            held -= 1

    with override_settings(CHAT_LOOP_DB_CONNECTIONS=3):
        loopdb.close_all()
        for _ in range(4):
            await use(0)
        assert len(set(opened)) == 1
        await asyncio.gather(*(use(0.05) for _ in range(8)))
        assert most_held == 3 and len(set(opened)) == 3


async def test_statements_are_quoted_as_psycopg_quotes_them(sent):
    """loopdb.execute_statements quotes each statement's parameters itself (its text split
    once and cached) and sends them all as one simple query: the text is the one psycopg's
    client-side-binding cursor would send for the merged statements, each statement's
    result comes back in turn, and the adapter context is kept from one call to the next."""
    import datetime as dt
    import decimal

    values = [None, 0, -7, 2**40, 1.5, decimal.Decimal("2.50"), True, "plain", "it's \\ a %s %% \"test\"",
              "ünïcødé ✓", uuid.UUID(int=5), dt.datetime(2026, 12, 6, 1, 2, 3, 456789, tzinfo=dt.UTC),
              dt.date(2026, 1, 2), [1, 2, 3]]
    statements = [*(("SELECT %s", [value]) for value in values), ("SELECT %s::text[]", [["a", None]]),
                  ("SELECT %s::int + %s, '100%%'", [1, 2])]
    loopdb.close_all()
    with override_settings(CHAT_LOOP_DB_PREPARE=False):  # the texts as they are (see the next test)
        async with loopdb.connection() as conn:
            merged = psycopg.AsyncClientCursor(conn).mogrify("; ".join(sql for sql, _ in statements),
                                                             [p for _, params in statements for p in params])
            cursor = await loopdb.execute_statements(conn, statements)
            rows = [(await cursor.fetchone())]
            while cursor.nextset():
                rows.append(await cursor.fetchone())
            again = await loopdb.execute_statements(conn, [("SELECT %s", ["again"])])
            assert again is cursor and (await again.fetchone()) == ("again",)
            context = conn.literal_context
            await loopdb.execute_statements(conn, [("SELECT %s", [3])])
            assert conn.literal_context is context
    assert sent[0] == merged.encode()
    assert [row[0] for row in rows[:-2]] == values
    assert rows[-2:] == [(["a", None],), (3, "100%")]


async def test_prepared_statements_get_the_same_values():
    """The same quoted literals as EXECUTE arguments: PostgreSQL coerces them to the types
    it inferred for the prepared text's placeholders, and every value comes back as the
    unprepared text gives it (None, the extremes of quoting, %% for a literal %, one text
    used twice in a batch, which is prepared once)."""
    import datetime as dt
    import decimal

    statements = [("SELECT %s::int", [None]), ("SELECT %s::int", [-7]), ("SELECT %s::bigint", [2**40]),
                  ("SELECT %s::float8", [1.5]), ("SELECT %s::numeric", [decimal.Decimal("2.50")]),
                  ("SELECT %s::bool", [True]), ("SELECT %s::text", ["it's \\ a %s %% \"test\" $1"]),
                  ("SELECT %s::text", ["ünïcødé ✓"]), ("SELECT %s::uuid", [uuid.UUID(int=5)]),
                  ("SELECT %s::timestamptz", [dt.datetime(2026, 12, 6, 1, 2, 3, 456789, tzinfo=dt.UTC)]),
                  ("SELECT %s::date", [dt.date(2026, 1, 2)]), ("SELECT %s::int[]", [[1, 2, 3]]),
                  ("SELECT %s::text[]", [["a", None]]), ("SELECT %s::int + %s, '100%%'", [1, 2]),
                  ("SELECT 'no parameters, 100%%'", [])]

    async def run() -> list[tuple]:
        async with loopdb.connection() as conn:
            cursor = await loopdb.execute_statements(conn, statements)
            rows = [await cursor.fetchone()]
            while cursor.nextset():
                rows.append(await cursor.fetchone())
            return rows

    loopdb.close_all()
    with override_settings(CHAT_LOOP_DB_PREPARE=False):
        expected = await run()
    with override_settings(CHAT_LOOP_DB_PREPARE=True):
        assert await run() == expected
        assert await run() == expected  # prepared already: EXECUTEs only
    assert [row[0] for row in expected[:-2]] == [
        None, -7, 2**40, 1.5, decimal.Decimal("2.50"), True, "it's \\ a %s %% \"test\" $1", "ünïcødé ✓",
        uuid.UUID(int=5), dt.datetime(2026, 12, 6, 1, 2, 3, 456789, tzinfo=dt.UTC), dt.date(2026, 1, 2), [1, 2, 3],
        ["a", None]]
    assert expected[-2:] == [(3, "100%"), ("no parameters, 100%",)]


@pytest.mark.parametrize("text", ["SELECT %(name)s", "SELECT %b", "SELECT 100%"])
def test_other_placeholders_are_refused(text):
    """Only %s (and %% for a literal %) read as psycopg reads them; anything else would be
    quoted differently here, so it is refused rather than run."""
    with pytest.raises(ValueError, match="only %s placeholders"):
        loopdb._template(text)


async def test_connections_idle_past_the_limit_are_closed():
    """After a peak, the connections it opened are closed once unused for
    CHAT_LOOP_DB_MAX_IDLE_S; the one still in use stays; with no traffic at all every one
    closes, and the next send opens a fresh one."""
    seen: list = []

    async def use(pause: float) -> None:
        async with loopdb.connection() as conn:
            seen.append(conn)
            await conn.execute("SELECT 1")
            await asyncio.sleep(pause)

    with override_settings(CHAT_LOOP_DB_CONNECTIONS=3, CHAT_LOOP_DB_MAX_IDLE_S=0.3):
        loopdb.close_all()
        try:
            await asyncio.gather(*(use(0.05) for _ in range(3)))  # the peak: three open
            peak = set(seen)
            assert len(peak) == 3
            seen.clear()
            for _ in range(12):  # one send at a time for 0.6 s: the same (most recent) one
                await use(0.05)
            (hot,) = set(seen)
            assert not hot.closed and sum(c.closed for c in peak) == 2
            await asyncio.sleep(0.5)  # no traffic
            assert hot.closed
            seen.clear()
            await use(0)
            assert seen[0] not in peak and not seen[0].closed
        finally:
            loopdb.close_all()
