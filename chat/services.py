"""Writes for counselling chat. Typed, keyword-only, `<entity>_<verb>`.

Locks: a message takes the Conversation row lock (seq assignment); assignment takes
the CounsellorStatus row lock (capacity) then the Session row lock (one counsellor per
request). Events are pushed by chat.events after commit, never from here directly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.utils import timezone

from accounts.models import Role, User
from config import realtime
from config.exceptions import ServiceError
from config.perloop import per_loop
from config.sql import (
    Statement,
    execute_opening,
    insert_statement,
    loaded_instance,
    prep_value,
    reserve_id_expression,
    reserve_id_sql,
    sql_insert,
    update_statement,
)
from triage.engine import level_rank
from triage.models import Assessment
from triage.services import (
    assessment_escalates,
    assessment_inline,
    assessment_record,
    assessment_row,
    model_dispatch,
)

from . import events
from .access import participant_may_write
from .exceptions import (
    AlreadyTaken,
    AtCapacity,
    BodyTooLong,
    InvalidInput,
    NotAvailable,
    NotParticipant,
    QueueEmpty,
    RateLimited,
    SessionClosed,
    SessionNotFound,
)
from .models import (
    Availability,
    CaseNote,
    ChatPreference,
    Conversation,
    CounsellorStatus,
    Feedback,
    Message,
    MessageKind,
    Participant,
    ParticipantRole,
    Session,
    SessionState,
    TranscriptAccess,
    Transfer,
)
from .selectors import (
    active_session_count,
    operating_hours_open,
    participants_live,
    queue_estimate,
    queue_position,
    request_text,
    session_open_for,
    setting,
)

logger = logging.getLogger(__name__)

TOPIC_MAX_CHARS = 200
NOTE_MAX_CHARS = 10_000
REASON_MAX_CHARS = 200

SELF_HELP_DEFAULT = [
    {"title": "Breathing: 4-7-8", "body": "Breathe in for 4, hold for 7, out for 8. Repeat four times."},
    {"title": "Grounding: 5-4-3-2-1", "body": "Name 5 things you see, 4 you can touch, 3 you hear, 2 you smell, 1 you taste."},
    {"title": "While you wait", "body": "You can write down what you want to talk about; your counsellor will read it."},
]
OUTSIDE_HOURS_NOTICE = (
    "Our counsellors are not online right now. Your request is saved and you will keep your place "
    "until they are back. If you need help now, please use one of the crisis contacts below."
)
ESCALATION_NOTICE = (
    "Thank you for telling us. You matter, and you don't have to deal with this on your own. "
    "A member of our team has been alerted. If you are in danger right now, please contact:"
)
SILENCE_NOTICE = "This chat was closed because it has been quiet for a while. You can start a new one at any time."


def max_body_chars() -> int:
    return int(setting("CHAT_MESSAGE_MAX_CHARS", getattr(settings, "MESSAGE_MAX_CHARS", 4000)))


def crisis_text(intro: str) -> str:
    lines = [intro] + [f"- {r['name']}: {r['contact']} ({r['when']})" for r in getattr(settings, "CRISIS_RESOURCES", [])]
    return "\n".join(lines)


def _check_body(body: Any) -> str:
    if not isinstance(body, str):
        raise InvalidInput("`body` must be a string.")
    if len(body) > max_body_chars():
        raise BodyTooLong(f"Messages are limited to {max_body_chars()} characters.")
    if not body.strip():
        raise InvalidInput("`body` must not be empty.")
    return body


def _rate_limit() -> tuple[int, int]:
    """(messages, seconds): how many messages one person may send in any such window."""
    return int(setting("CHAT_MESSAGE_RATE", 30)), int(setting("CHAT_MESSAGE_RATE_WINDOW_S", 10))


# --- messages ------------------------------------------------------------------------
def _message_store(
    *,
    conversation: Conversation,
    body: str,
    sender: User | None,
    kind: str,
    client_msg_id: uuid.UUID | None,
    now: dt.datetime,
    last: bool = False,
) -> Message:
    """Caller holds the conversation lock (select_for_update) inside a transaction. `last`:
    the caller writes nothing more in it (config.sql.sql_insert)."""
    message = sql_insert(Message, before=[_seq_advance(conversation, now)], last=last,
                         **_message_values(conversation=conversation, body=body, sender=sender, kind=kind,
                                           client_msg_id=client_msg_id, now=now))
    message.conversation, message.sender = conversation, sender
    return message


def _seq_advance(conversation: Conversation, now: dt.datetime) -> Statement:
    """The next seq, as a statement that travels with the message's INSERT (one round trip
    for both, config/sql.py). Plain UPDATE, not Model.save(): this runs for every message
    and save()'s machinery (signals, update_fields checks, compiling) cost more than the
    statement itself."""
    conversation.last_seq += 1
    conversation.last_activity_at = now
    return update_statement(Conversation, conversation.pk, last_seq=conversation.last_seq,
                            last_activity_at=connection.ops.adapt_datetimefield_value(now))


def _message_values(*, conversation: Conversation, body: str, sender: User | None, kind: str,
                    client_msg_id: uuid.UUID | None, now: dt.datetime) -> dict[str, Any]:
    return {
        "conversation_id": conversation.pk, "seq": conversation.last_seq, "sender_id": sender.pk if sender else None,
        "sender_role": sender.role if sender else "", "kind": kind, "body": body, "client_msg_id": client_msg_id,
        "sent_at": now,
    }


def _message_store_triaged(*, conversation: Conversation, body: str, sender: User, client_msg_id: uuid.UUID,
                           now: dt.datetime, inline: Any, reserved: tuple[int, int] | None,
                           last: bool = False) -> tuple[Message, Any]:
    """A young person's message and its inline assessment, each pointing at the other.

    With (message id, assessment id) reserved by the locking read (PostgreSQL), the seq
    UPDATE and both INSERTs travel in one round trip: the message is stored with its
    assessment's id already set (the foreign key is checked at commit). Elsewhere the
    message is stored, then the assessment, which sets the message's assessment_id."""
    if reserved is None:
        message = _message_store(conversation=conversation, body=body, sender=sender, kind=MessageKind.TEXT,
                                 client_msg_id=client_msg_id, now=now)
        # Set in the assessment INSERT's statement where it can be.
        placement: dict[str, Any] = {"link": (Message, message.pk, "assessment_id")}
    else:
        message_id, assessment_id = reserved
        seq = _seq_advance(conversation, now)
        insert, message = insert_statement(
            Message, id=message_id, assessment_id=assessment_id,
            **_message_values(conversation=conversation, body=body, sender=sender, kind=MessageKind.TEXT,
                              client_msg_id=client_msg_id, now=now))
        placement = {"before": [seq, insert], "reserved_id": assessment_id}
    assessment = assessment_record(
        source_type="chat_message", source_id=message.pk, author_id=sender.id, text=body,
        conversation_id=conversation.pk, inline_result=inline, new_source=True, last=last, **placement,
    )
    message.conversation, message.sender, message.assessment = conversation, sender, assessment
    return message, assessment


def _crisis_message_post(*, conversation: Conversation, now: dt.datetime) -> Message:
    return _message_store(
        conversation=conversation, body=crisis_text(ESCALATION_NOTICE), sender=None,
        kind=MessageKind.SYSTEM, client_msg_id=None, now=now,
    )


@dataclass
class SendResult:
    message: Message
    created: bool
    extra: list[Message] = field(default_factory=list)


def message_send(
    *, sender: User, conversation_id: int, client_msg_id: str | uuid.UUID, body: Any, now: dt.datetime | None = None
) -> SendResult:
    """Store a message exactly once per (sender, client_msg_id), with the next seq, then
    push message.new after commit. A retry returns the stored message (created=False).
    A young person's message is triaged in the same transaction; if the triage says
    escalate, a system message with crisis resources follows it in the same transaction.

    Authorised here, on every message, under the conversation lock: the sender must be a
    live participant who may write (not an observing supervisor); unknown conversations
    and other people's fail the same way (`not_participant`). The per-person rate limit
    counts the sender's stored messages in a sliding window, in the same statement.

    This is the hottest path of the service (docs/benchmarks.md): one locking query reads
    everything the checks need, and the inline triage runs before the transaction opens."""
    now = now or timezone.now()
    cmid = send_client_msg_id(client_msg_id)
    body = _check_body(body)
    # Pure CPU and no database: done before the lock is taken. A retry wastes it (rare).
    inline = send_inline_triage(sender=sender, body=body)
    limit, window_s = _rate_limit()
    try:
        with transaction.atomic():
            ctx = _send_context_locked(conversation_id=conversation_id, sender_id=sender.id, cmid=cmid,
                                       since=now - dt.timedelta(seconds=window_s), limit=limit,
                                       reserve=inline is not None)
            if ctx is not None and ctx.duplicate_id is not None:
                # A retry of a stored message always gets its ack: before the checks below.
                return SendResult(_message_retry(user=sender, cmid=cmid, conversation_id=conversation_id),
                                  created=False)
            send_checks(ctx, sender=sender, limit=limit)
            conversation, session, live = ctx.conversation, ctx.session, ctx.live
            extra = []
            if inline is None:
                message = _message_store(conversation=conversation, body=body, sender=sender, kind=MessageKind.TEXT,
                                         client_msg_id=cmid, now=now, last=True)
            else:
                # Where nothing is written after the message and its assessment (no escalation,
                # no queue move), the COMMIT travels with them: one round trip less.
                moves_up = _queue_moves_up(session=session, level=inline.level)
                message, assessment = _message_store_triaged(
                    conversation=conversation, body=body, sender=sender, client_msg_id=cmid, now=now, inline=inline,
                    reserved=ctx.reserved, last=not moves_up)
                if assessment.action == "escalate":
                    extra.append(_crisis_message_post(conversation=conversation, now=now))
                if moves_up:
                    _queue_reprioritise(session=session, level=assessment.level)
            for m in [message, *extra]:
                events.push_message_new(m, live)
    except IntegrityError:
        # Same (sender, client_msg_id) committed by a racing retry: answer with it.
        existing = _message_retry(user=sender, cmid=cmid, conversation_id=conversation_id)
        if existing is None:
            raise
        return SendResult(existing, created=False)
    return SendResult(message, created=True, extra=extra)


async def message_send_on_loop(
    *, sender: User, conversation_id: int, client_msg_id: str | uuid.UUID, body: Any
) -> SendResult | None:
    """message_send for the common case, run on the event loop with no thread hop
    (config/loopdb.py): a new message that is stored, triaged inline if a young person's,
    and needs nothing else written. Returns None for every other case — an escalation, a
    queued request moving up, a retry, a database error, or no async driver — and the
    caller then runs message_send, which stays the one reference for all of them. Handing
    over is safe at any point, even after a COMMIT whose answer was lost: a message is
    stored once per (sender, client_msg_id), and a retry gets the stored one. Refusals
    (not a participant, rate limited, session closed) raise as message_send's do.

    The same two round trips, built by the same functions as message_send's: "BEGIN; <the
    locking read>", then the seq UPDATE, the message and its assessment with the COMMIT;
    under load several messages share them (_GroupCommit). The message.new pushes and the
    model-layer dispatch go out from the transaction's task after the COMMIT, before the
    caller is answered."""
    from config import loopdb

    if not loopdb.usable():
        return None
    now = timezone.now()
    cmid = send_client_msg_id(client_msg_id)
    body = _check_body(body)
    inline = send_inline_triage(sender=sender, body=body)
    row = None
    if inline is not None:
        row = assessment_row(source_type="chat_message", source_id=0, author_id=sender.id,
                             conversation_id=conversation_id, thread_id=None, result=inline, full=False)
        # The escalation, its audit row and the crisis resources follow the message in its
        # transaction; eager model dispatch runs the model task in the caller's thread.
        if assessment_escalates(row) or (row["model_dispatched_at"] is not None and settings.CELERY_TASK_ALWAYS_EAGER):
            return None
    limit, window_s = _rate_limit()
    ids = [reserve_id_expression(Message), reserve_id_expression(Assessment) if row is not None else None]
    params = send_context_params(conversation_id=conversation_id, sender_id=sender.id, cmid=cmid,
                                 since=now - dt.timedelta(seconds=window_s), limit=limit)
    send = _LoopSend(conversation_id=conversation_id, ids=ids, params=params, sender=sender, body=body, cmid=cmid,
                     now=now, row=row, limit=limit)
    message = await _GroupCommit.for_loop().submit(send)
    return None if message is None else SendResult(message, created=True)


@dataclass(eq=False)
class _LoopSend:
    """One message on its way through message_send_on_loop's group commit (_GroupCommit)."""

    conversation_id: int
    ids: list[str | None]  # reserve_id_expression()s for the message and its assessment
    params: list[Any]  # the locking read's (send_context_params)
    sender: User
    body: str
    cmid: uuid.UUID
    now: dt.datetime
    row: dict[str, Any] | None  # the assessment row of a young person's message
    limit: int
    outcome: asyncio.Future[Message | None] = field(init=False)

    def writes(self, ctx: SendContext | None) -> tuple[list[Statement], Message] | None:
        """On the rows read under the lock: this message's statements and the message they
        store; None to hand it over (a retry, a queued request moving up); raises a refusal."""
        if ctx is not None and ctx.duplicate_id is not None:
            return None  # the retry's answer: message_send
        send_checks(ctx, sender=self.sender, limit=self.limit)
        if self.row is not None and _queue_moves_up(session=ctx.session, level=self.row["level"]):
            return None
        return _message_statements(ctx=ctx, sender=self.sender, body=self.body, cmid=self.cmid, now=self.now,
                                   row=self.row)

    def settle(self, result: Message | None = None, *, error: BaseException | None = None) -> None:
        if self.outcome.done():  # the caller went away (its socket closed)
            return
        if error is not None:
            self.outcome.set_exception(error)
        else:
            self.outcome.set_result(result)


class _GroupCommit:
    """message_send_on_loop's transactions on one event loop (group commit).

    While CHAT_SEND_TRANSACTIONS transactions are in flight, a new message waits; when one
    ends, the next takes every waiting message at once — at most one per conversation (a
    second one waits for the next transaction, which gives it the next seq) and MAX_BATCH in
    all — in the same two round trips a single message takes: "BEGIN; <each message's
    locking read>", then all their writes with the COMMIT. At light load a message goes out
    alone at once, as before; under load the round trips' fixed costs (the driver's Python,
    the loop's wake-ups, PostgreSQL's statement and commit overheads) are shared by the
    batch. Measured in docs/benchmarks.md (twentieth pass).

    Each message is judged on its own rows: a refusal (not a participant, rate limited,
    session closed) answers that message only; a retry or a queued request moving up is
    handed over to message_send after the COMMIT. A database error hands every message of
    the transaction over, which is safe as it is for a single message: a message is stored
    once per (sender, client_msg_id), so message_send finds what a lost COMMIT answer
    stored. Locks are taken in conversation order in every transaction, so two transactions
    in flight wait for each other at most, never in a cycle (message_send locks one
    conversation).

    The transaction runs in its own task, not the sender's: a sender whose socket closes
    while its message waits or is being stored does not cancel the others', and the pushes
    and the model-layer dispatch of what was stored go out from that task, whether or not
    the sender is still there to be acknowledged."""

    MAX_BATCH = 32
    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _GroupCommit] = weakref.WeakKeyDictionary()

    def __init__(self, in_flight: int) -> None:
        self.most_in_flight = max(1, in_flight)
        self.in_flight = 0
        self.waiting: list[_LoopSend] = []

    @classmethod
    def for_loop(cls) -> _GroupCommit:
        return per_loop(cls._by_loop, lambda _: cls(settings.CHAT_SEND_TRANSACTIONS))

    async def submit(self, send: _LoopSend) -> Message | None:
        """The stored message, or None: hand it over to message_send. Raises a refusal."""
        loop = asyncio.get_running_loop()
        send.outcome = loop.create_future()
        self.waiting.append(send)
        if self.in_flight < self.most_in_flight:
            self.in_flight += 1
            # A copy of this sender's context, as any task gets: a fresh, empty one would make
            # Django build a new connection wrapper in it for config.sql's adapting (~0.1 ms a
            # transaction). The pushes it collects are not the transaction's: that collects
            # its own (realtime.collect in _loop_send_commit).
            loop.create_task(self._run())
        return await send.outcome

    async def _run(self) -> None:
        try:
            while self.waiting:
                await _loop_send_commit(self._take())
        except BaseException:
            for send in self.waiting:  # the loop is closing: message_send takes them
                send.settle(None)
            self.waiting.clear()
            raise
        finally:
            self.in_flight -= 1

    def _take(self) -> list[_LoopSend]:
        batch: list[_LoopSend] = []
        later: list[_LoopSend] = []
        conversations: set[int] = set()
        for send in self.waiting:
            if send.conversation_id in conversations or len(batch) >= self.MAX_BATCH:
                later.append(send)
            else:
                conversations.add(send.conversation_id)
                batch.append(send)
        self.waiting = later
        return batch


async def _loop_send_commit(batch: list[_LoopSend]) -> None:
    """One transaction of _GroupCommit: stores what it may of `batch` and settles each."""
    import psycopg

    from config import loopdb

    batch.sort(key=lambda send: send.conversation_id)  # one lock order in every transaction
    stored: list[tuple[_LoopSend, Message, SendContext]] = []
    try:
        async with loopdb.connection() as conn:
            cursor = await loopdb.execute_statements(
                conn, [("BEGIN", ()), *((send_context_sql(*send.ids), send.params) for send in batch)])
            statements: list[Statement] = []
            for send in batch:
                cursor.nextset()  # past BEGIN's result, then each read's
                ctx = send_context_from_rows(await cursor.fetchall(), conversation_id=send.conversation_id)
                try:
                    writes = send.writes(ctx)
                except ServiceError as exc:  # this message's refusal; the others go on
                    send.settle(error=exc)
                    continue
                if writes is not None:
                    statements += writes[0]
                    stored.append((send, writes[1], ctx))
            if statements:
                await loopdb.execute_statements(conn, [*statements, ("COMMIT", ())])
    except psycopg.Error as exc:
        # A unique-constraint race is a retry racing its own first try; anything else (the
        # database unreachable, a lost answer) is worth an operator's look.
        log = logger.info if isinstance(exc, psycopg.IntegrityError) else logger.warning
        log("send on the event loop handed over to message_send (%s, %d messages)", type(exc).__name__, len(batch))
        stored = []
    except Exception:
        logger.exception("send on the event loop failed; %d messages handed over to message_send", len(batch))
        stored = []
    except BaseException:
        for send in batch:
            send.settle(None)
        raise
    try:
        if stored:
            with realtime.collect() as pushes:
                for _, message, ctx in stored:
                    events.push_message_new_committed(message, ctx.live)
            dispatch = [message.assessment_id for send, message, _ in stored
                        if send.row is not None and send.row["model_dispatched_at"] is not None]
            if dispatch:
                model_dispatch(dispatch)
            await realtime.deliver(pushes)
    finally:
        for send, message, _ in stored:
            send.settle(message)
        for send in batch:
            send.settle(None)  # no-op for those settled above: the rest are handed over


def _message_statements(*, ctx: SendContext, sender: User, body: str, cmid: uuid.UUID, now: dt.datetime,
                        row: dict[str, Any] | None) -> tuple[list[Statement], Message]:
    """message_send_on_loop's writes, into the ids its locking read reserved: the seq
    UPDATE, the message, and (`row`, a young person's) its assessment, which the message
    already points at (the foreign key is checked at commit)."""
    message_id, assessment_id = ctx.reserved
    statements = [_seq_advance(ctx.conversation, now)]
    insert, message = insert_statement(
        Message, id=message_id, assessment_id=assessment_id if row is not None else None,
        **_message_values(conversation=ctx.conversation, body=body, sender=sender, kind=MessageKind.TEXT,
                          client_msg_id=cmid, now=now))
    statements.append(insert)
    message.sender = sender
    if row is not None:
        insert, message.assessment = insert_statement(Assessment, id=assessment_id, **{**row, "source_id": message_id})
        statements.append(insert)
    return statements, message


def send_client_msg_id(value: str | uuid.UUID) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError as exc:
        raise InvalidInput("`client_msg_id` must be a UUID.") from exc


def send_inline_triage(*, sender: User, body: str) -> Any:
    """The inline verdict on a young person's message (None for staff messages)."""
    return assessment_inline(body) if sender.role == Role.YOUNG_PERSON else None


def send_checks(ctx: SendContext | None, *, sender: User, limit: int) -> None:
    """Whether `sender` may store a message now, on the rows read under the conversation
    lock (so a transfer committed meanwhile is seen); raises the reason if not. The rule of
    access_conversation_for_sender, then the rate limit, then the session's state."""
    participant_may_write(next((p for p in ctx.live if p.user_id == sender.id), None) if ctx else None)
    if ctx.recent >= limit:
        raise RateLimited()
    if ctx.session.state not in (SessionState.QUEUED, SessionState.ACTIVE):
        raise SessionClosed()


@dataclass
class SendContext:
    conversation: Conversation  # id and last_seq loaded; the rest deferred
    session: Session  # id, state and priority loaded
    live: list[Participant]  # id, user_id and role loaded
    duplicate_id: int | None
    recent: int  # the sender's messages in the rate window, counted up to the limit
    reserved: tuple[int, int] | None  # ids for the message and its assessment (_message_store_triaged)


def _send_context_locked(
    *, conversation_id: int, sender_id: int, cmid: uuid.UUID, since: dt.datetime, limit: int, reserve: bool
) -> SendContext | None:
    """One statement: the conversation row lock (seq), its session, its live participants
    (authorisation and fan-out), whether this client_msg_id is already stored, and how
    many messages the sender stored since `since` (rate limit; an index range scan of at
    most `limit` entries on (sender, sent_at)). `reserve`: also take the ids of the message
    and its assessment, where that lets both INSERTs travel in one round trip.

    Hand-written SQL because this runs for every message and Django compiling the same
    select_related + subquery + FOR UPDATE OF for each one cost more CPU than the rest of
    the transaction (bench/hotpath.py). Rows become model instances with only these
    fields loaded (the rest deferred), so a later save() writes only what was loaded.

    A retry that commits while we wait for the lock is not seen by the subquery (its
    snapshot is older); the unique (sender, client_msg_id) constraint then refuses our
    insert and message_send answers with the stored message. Likewise the count can miss
    a message the same person's other socket committed meanwhile: the limit can be passed
    by the number of their sockets sending at the same instant, never more."""
    with connection.cursor() as cursor:
        ids = (reserve_id_sql(Message, cursor), reserve_id_sql(Assessment, cursor)) if reserve else (None, None)
        execute_opening(cursor, send_context_sql(*ids),
                        send_context_params(conversation_id=conversation_id, sender_id=sender_id, cmid=cmid,
                                            since=since, limit=limit))
        return send_context_from_rows(cursor.fetchall(), conversation_id=conversation_id)


def send_context_params(*, conversation_id: int, sender_id: int, cmid: uuid.UUID, since: dt.datetime,
                        limit: int) -> list[Any]:
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper, not the proxy (config.sql._insert)
    cmid_db = prep_value(Message, "client_msg_id", cmid, db)
    since_db = prep_value(Message, "sent_at", since, db)
    return [sender_id, cmid_db, sender_id, since_db, limit, conversation_id]


def send_context_from_rows(rows: list[tuple], *, conversation_id: int) -> SendContext | None:
    """The locking read's rows (send_context_sql) as a SendContext; None: no such conversation."""
    if not rows:
        return None
    first = rows[0]
    return SendContext(
        conversation=loaded_instance(Conversation, id=conversation_id, last_seq=first[3]),
        session=loaded_instance(Session, id=first[4], conversation_id=conversation_id, state=first[5], priority=first[6]),
        live=[loaded_instance(Participant, id=r[0], conversation_id=conversation_id, user_id=r[1], role=r[2])
              for r in rows if r[0] is not None],
        duplicate_id=first[7],
        recent=first[8],
        reserved=(first[9], first[10]) if first[9] is not None else None,
    )


@functools.cache
def send_context_sql(message_id: str | None, assessment_id: str | None) -> str:
    p, c, s, m = (model._meta.db_table for model in (Participant, Conversation, Session, Message))
    lock = " FOR UPDATE OF c" if connection.features.has_select_for_update_of else ""
    # Only table names from model metadata (and reserve_id_sql's expressions, built from
    # them) are interpolated; values are parameters.
    return (
        f"SELECT p.id, p.user_id, p.role, c.last_seq, s.id, s.state, s.priority, "  # noqa: S608
        f"(SELECT m.id FROM {m} m WHERE m.sender_id = %s AND m.client_msg_id = %s LIMIT 1), "
        f"(SELECT COUNT(*) FROM (SELECT 1 FROM {m} m WHERE m.sender_id = %s AND m.sent_at > %s LIMIT %s) r), "
        f"{message_id or 'NULL'}, {assessment_id or 'NULL'} "
        f"FROM {c} c JOIN {s} s ON s.conversation_id = c.id "
        f"LEFT JOIN {p} p ON p.conversation_id = c.id AND p.left_at IS NULL "
        f"WHERE c.id = %s{lock}"
    )


def _queue_moves_up(*, session: Session, level: str) -> bool:
    """Words written while waiting count: a riskier message moves the request up."""
    return session.state == SessionState.QUEUED and level_rank(level) > session.priority


def _queue_reprioritise(*, session: Session, level: str) -> None:
    """Move the request up (the caller checked _queue_moves_up)."""
    Session.objects.filter(pk=session.pk, state=SessionState.QUEUED).update(priority=level_rank(level), risk_level=level)
    events.push_queue_changed()


def _message_retry(*, user: User, cmid: uuid.UUID, conversation_id: int) -> Message | None:
    existing = Message.objects.filter(sender_id=user.id, client_msg_id=cmid).select_related("sender", "assessment").first()
    if existing is None:
        return None
    if existing.conversation_id != conversation_id:
        raise InvalidInput("`client_msg_id` was already used for another conversation; use a new UUID.")
    return existing


def message_post_system(*, conversation_id: int, body: str, kind: str = MessageKind.SYSTEM) -> Message:
    """Store a system message (sender null) with the next seq; message.new after commit."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
        message = _message_store(
            conversation=conversation, body=body, sender=None, kind=kind, client_msg_id=None, now=timezone.now()
        )
        events.push_message_new(message, participants_live(conversation_id))
    return message


def read_mark(*, participant: Participant, seq: int) -> int:
    """Move the caller's read marker forward (never back). Others see a `read` event
    unless the reader has turned read receipts off."""
    with transaction.atomic():
        conversation = Conversation.objects.only("last_seq").get(pk=participant.conversation_id)
        seq = max(0, min(seq, conversation.last_seq))
        Participant.objects.filter(pk=participant.pk, last_read_seq__lt=seq).update(last_read_seq=seq)
        if read_receipts_shared(user=participant.user):
            others = [p.user_id for p in participants_live(participant.conversation_id) if p.user_id != participant.user_id]
            events.push_read(participant.conversation_id, participant.user, seq, others)
    return seq


def read_receipts_shared(*, user: User) -> bool:
    pref = ChatPreference.objects.filter(user_id=user.id).only("share_read_receipts").first()
    return pref.share_read_receipts if pref else True


def read_receipts_set(*, user: User, enabled: bool) -> bool:
    ChatPreference.objects.update_or_create(user=user, defaults={"share_read_receipts": enabled})
    return enabled


def typing_notify(*, participant: Participant, state: bool) -> None:
    """Not stored: a typing indicator is only worth anything live."""
    others = [p.user_id for p in participants_live(participant.conversation_id) if p.user_id != participant.user_id]
    events.push_typing(participant.conversation_id, participant.user, state, others)


# --- queue and sessions ------------------------------------------------------------------
@dataclass
class RequestResult:
    session: Session
    position: int | None
    eta_s: int | None
    resumed: bool
    outside_hours: bool

    def as_payload(self) -> dict[str, Any]:
        data = {
            "session": self.session.id,
            "conversation": self.session.conversation_id,
            "state": self.session.state,
            "position": self.position,
            "eta_s": self.eta_s,
            "resumed": self.resumed,
            "outside_hours": self.outside_hours,
            "self_help": setting("CHAT_SELF_HELP", SELF_HELP_DEFAULT),
            "crisis_resources": getattr(settings, "CRISIS_RESOURCES", []),
        }
        if self.outside_hours:
            data["notice"] = OUTSIDE_HOURS_NOTICE
        return data


def session_status(*, session: Session) -> RequestResult:
    if session.state == SessionState.QUEUED:
        position = queue_position(session=session)
        return RequestResult(session, position, queue_estimate().eta_s(position), True, session.outside_hours)
    return RequestResult(session, None, None, True, session.outside_hours)


def session_request(
    *, young_person: User, topic: str = "", body: str = "", client_msg_id: str | None = None,
    now: dt.datetime | None = None,
) -> RequestResult:
    """Open a request (or return the open one: coming back keeps the place). The opening
    message is stored as seq 1 and triaged as source "session_request" (id = session id)
    in the same transaction; its level sets the queue priority."""
    now = now or timezone.now()
    topic = (topic or "").strip()
    body = body or ""
    if len(topic) > TOPIC_MAX_CHARS:
        raise InvalidInput(f"`topic` is limited to {TOPIC_MAX_CHARS} characters.")
    if len(body) > max_body_chars():
        raise BodyTooLong(f"Messages are limited to {max_body_chars()} characters.")
    cmid = None
    if client_msg_id:
        try:
            cmid = uuid.UUID(str(client_msg_id))
        except ValueError as exc:
            raise InvalidInput("`client_msg_id` must be a UUID.") from exc
    existing = session_open_for(young_person_id=young_person.id)
    if existing is not None:
        return _request_resume(session=existing, young_person=young_person, body=body, cmid=cmid, now=now)
    outside = not operating_hours_open(now=now)
    text = request_text(topic=topic, body=body)
    inline = assessment_inline(text)
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(created_at=now, last_activity_at=now)
            Participant.objects.create(conversation=conversation, user=young_person, role=ParticipantRole.YOUNG_PERSON, joined_at=now)
            events.join_conversation([young_person.id], conversation.id)
            session = Session.objects.create(
                conversation=conversation, young_person=young_person, topic=topic, requested_at=now, outside_hours=outside
            )
            opening = None
            if body.strip():
                opening = _message_store(
                    conversation=conversation, body=body, sender=young_person, kind=MessageKind.TEXT,
                    client_msg_id=cmid or _derived_msg_id(session.id, body), now=now,
                )
            assessment = assessment_record(
                source_type="session_request", source_id=session.id, author_id=young_person.id,
                text=text, conversation_id=conversation.id, inline_result=inline, new_source=True,
                link=(Message, opening.pk, "assessment_id") if opening is not None else None,
            )
            if opening is not None:
                opening.assessment = assessment
            session.opening_message = opening
            session.assessment = assessment
            session.risk_level = assessment.level
            session.priority = level_rank(assessment.level)
            session.save(update_fields=["opening_message", "assessment", "risk_level", "priority"])
            stored = [opening] if opening is not None else []
            if assessment.action == "escalate":
                stored.append(_crisis_message_post(conversation=conversation, now=now))
            # The young person's other devices (and this one, for the crisis resources).
            live = participants_live(conversation.id)
            for message in stored:
                events.push_message_new(message, live)
            events.push_queue_changed()
    except IntegrityError:
        # A second device raced us to the one open request allowed: join that one.
        existing = session_open_for(young_person_id=young_person.id)
        if existing is None:
            raise
        return _request_resume(session=existing, young_person=young_person, body=body, cmid=cmid, now=now)
    position = queue_position(session=session)
    return RequestResult(session, position, queue_estimate().eta_s(position), False, outside)


def _derived_msg_id(session_id: int, body: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"earlyhelp:session:{session_id}:{body}")


def _request_resume(
    *, session: Session, young_person: User, body: str, cmid: uuid.UUID | None, now: dt.datetime
) -> RequestResult:
    """Asking again while a session is open returns it. Words sent with the repeat are
    kept as a message (every word kept), once: without a client id, one is derived from
    the session and the text, so a client resending its request does not double it."""
    if body.strip():
        message_send(
            sender=young_person,
            conversation_id=session.conversation_id,
            client_msg_id=cmid or _derived_msg_id(session.id, body),
            body=body,
            now=now,
        )
        session.refresh_from_db()
    return session_status(session=session)


def counsellor_status_set(*, user: User, status: str, capacity: int | None = None) -> CounsellorStatus:
    if status not in Availability.values:
        raise InvalidInput(f"`status` must be one of {', '.join(Availability.values)}.")
    if capacity is not None and not (1 <= capacity <= 20):
        raise InvalidInput("`capacity` must be between 1 and 20.")
    with transaction.atomic():
        row, _ = CounsellorStatus.objects.select_for_update().get_or_create(
            user=user, defaults={"capacity": int(setting("CHAT_COUNSELLOR_CAPACITY", 3))}
        )
        row.status = status
        if capacity is not None:
            row.capacity = capacity
        row.updated_at = timezone.now()
        row.save()
        events.push_staff_status(user, row.status, row.capacity, active_session_count(counsellor_id=user.id))
        # Available capacity feeds every waiting person's estimate.
        events.push_queue_changed()
    return row


def _status_locked(user: User) -> CounsellorStatus:
    row, _ = CounsellorStatus.objects.select_for_update().get_or_create(
        user=user, defaults={"capacity": int(setting("CHAT_COUNSELLOR_CAPACITY", 3))}
    )
    return row


def _join(*, conversation_id: int, user: User, role: str, now: dt.datetime) -> None:
    Participant.objects.update_or_create(
        conversation_id=conversation_id, user=user, defaults={"role": role, "left_at": None, "joined_at": now}
    )
    events.join_conversation([user.id], conversation_id)
    Conversation.objects.filter(pk=conversation_id).update(last_activity_at=now)


def session_accept(*, counsellor: User, session_id: int | None = None, now: dt.datetime | None = None) -> Session:
    """Take the next request (risk first, then waiting time) or a specific one. Atomic:
    the Session row is locked, so two counsellors never get the same young person; the
    next-in-queue path skips rows another counsellor is taking (SKIP LOCKED)."""
    now = now or timezone.now()
    with transaction.atomic():
        status = _status_locked(counsellor)
        if status.status != Availability.AVAILABLE:
            raise NotAvailable()
        if active_session_count(counsellor_id=counsellor.id) >= status.capacity:
            raise AtCapacity()
        if session_id is not None:
            session = Session.objects.select_for_update().filter(pk=session_id).first()
            if session is None:
                raise SessionNotFound()
            if session.state != SessionState.QUEUED:
                raise AlreadyTaken()
        else:
            from .selectors import QUEUE_ORDER

            session = (
                Session.objects.select_for_update(skip_locked=True)
                .filter(state=SessionState.QUEUED)
                .order_by(*QUEUE_ORDER)
                .first()
            )
            if session is None:
                raise QueueEmpty()
        session.state = SessionState.ACTIVE
        session.counsellor = counsellor
        session.assigned_at = now
        session.save(update_fields=["state", "counsellor", "assigned_at"])
        _join(conversation_id=session.conversation_id, user=counsellor, role=ParticipantRole.COUNSELLOR, now=now)
        message_post_system(conversation_id=session.conversation_id, body=f"{counsellor.public_name} has joined the chat.")
        events.push_session_assigned(session)
        events.push_queue_changed()
    return session


def session_transfer(
    *, session: Session, from_user: User, to_user_id: int, note: str = "", now: dt.datetime | None = None
) -> Session:
    """Warm transfer: the target joins, the current counsellor leaves the live feed (keeps
    the transcript), the conversation and its seq carry on. Handover note: staff only."""
    now = now or timezone.now()
    if len(note) > NOTE_MAX_CHARS:
        raise InvalidInput(f"`note` is limited to {NOTE_MAX_CHARS} characters.")
    target = User.objects.filter(pk=to_user_id, is_active=True).first()
    if target is None or target.role not in (Role.COUNSELLOR, Role.SUPERVISOR) or target.id == from_user.id:
        raise InvalidInput("`to` must be another active counsellor or a supervisor.")
    with transaction.atomic():
        if target.role == Role.COUNSELLOR:
            status = _status_locked(target)
            if status.status == Availability.AWAY:
                raise NotAvailable("That counsellor is away.")
            if active_session_count(counsellor_id=target.id) >= status.capacity:
                raise AtCapacity("That counsellor is at capacity.")
        session = Session.objects.select_for_update().get(pk=session.pk)
        if session.state != SessionState.ACTIVE:
            raise SessionClosed()
        if session.counsellor_id != from_user.id:
            raise NotParticipant("Only the current counsellor can transfer this session.")
        Participant.objects.filter(conversation_id=session.conversation_id, user=from_user).update(left_at=now)
        role = ParticipantRole.SUPERVISOR if target.role == Role.SUPERVISOR else ParticipantRole.COUNSELLOR
        _join(conversation_id=session.conversation_id, user=target, role=role, now=now)
        session.counsellor = target
        session.save(update_fields=["counsellor"])
        transfer = Transfer.objects.create(session=session, from_user=from_user, to_user=target, note=note, created_at=now)
        message_post_system(
            conversation_id=session.conversation_id,
            body=f"{from_user.public_name} has handed over to {target.public_name}, who can see the conversation so far.",
        )
        events.push_session_transferred(session, transfer)
    return session


def session_end(
    *, session: Session, user: User | None, reason: str = "", now: dt.datetime | None = None,
    notice: str | None = None,
) -> Session:
    """End an active session (either side) or cancel a queued one (the young person).
    Idempotent: ending an ended session returns it unchanged and pushes nothing."""
    now = now or timezone.now()
    reason = (reason or "").strip()[:REASON_MAX_CHARS]
    with transaction.atomic():
        session = Session.objects.select_for_update(of=("self",)).select_related("young_person", "counsellor").get(pk=session.pk)
        if session.state in (SessionState.ENDED, SessionState.CANCELLED):
            return session
        was_queued = session.state == SessionState.QUEUED
        session.state = SessionState.CANCELLED if was_queued else SessionState.ENDED
        session.ended_at = now
        session.ended_by = user
        session.end_reason = reason or ("cancelled" if was_queued else "ended")
        session.save(update_fields=["state", "ended_at", "ended_by", "end_reason"])
        live = participants_live(session.conversation_id)
        counsellor_ids = [p.user_id for p in live if p.role in (ParticipantRole.COUNSELLOR, ParticipantRole.SUPERVISOR)]
        if not was_queued:
            who = user.public_name if user is not None and user.role != Role.YOUNG_PERSON else None
            text = notice or (f"{who} ended the chat." if who else "The chat has ended.")
            message_post_system(conversation_id=session.conversation_id, body=text)
        events.push_session_ended(session, counsellor_ids)
        # Its conversation carries no more messages. Only here: a counsellor transferred
        # out or a supervisor who stopped observing stays in the group, receiving nothing
        # (each push lists its recipients), as a leave could overtake a later rejoin.
        events.leave_conversation([p.user_id for p in live], session.conversation_id)
        events.push_queue_changed()
    return session


def sessions_close_silent(*, now: dt.datetime | None = None) -> list[int]:
    """Close every active session silent for CHAT_SILENCE_TIMEOUT_S. Safe to run twice:
    each session is re-checked under its lock."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=int(setting("CHAT_SILENCE_TIMEOUT_S", 1800)))
    ids = list(
        Session.objects.filter(state=SessionState.ACTIVE, conversation__last_activity_at__lt=cutoff).values_list("id", flat=True)
    )
    return [sid for sid in ids if session_close_if_silent(session_id=sid, now=now)]


def session_close_if_silent(*, session_id: int, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=int(setting("CHAT_SILENCE_TIMEOUT_S", 1800)))
    with transaction.atomic():
        session = Session.objects.select_for_update(of=("self",)).select_related("conversation").filter(pk=session_id).first()
        if session is None or session.state != SessionState.ACTIVE:
            return False
        if session.conversation.last_activity_at >= cutoff:
            return False
        session_end(session=session, user=None, reason="silence", now=now, notice=SILENCE_NOTICE)
    return True


# --- notes, feedback, audit ------------------------------------------------------------
def note_add(*, session: Session, author: User, body: str) -> CaseNote:
    if not isinstance(body, str) or not body.strip():
        raise InvalidInput("`body` must not be empty.")
    if len(body) > NOTE_MAX_CHARS:
        raise InvalidInput(f"`body` is limited to {NOTE_MAX_CHARS} characters.")
    return CaseNote.objects.create(session=session, author=author, body=body)


def feedback_submit(*, session: Session, rating: Any, comment: str = "") -> Feedback:
    """One feedback per ended session (1-5 and an optional comment)."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidInput("`rating` must be an integer from 1 to 5.")
    if not isinstance(comment, str) or len(comment) > 2000:
        raise InvalidInput("`comment` must be a string of at most 2000 characters.")
    if session.state != SessionState.ENDED:
        raise InvalidInput("Feedback can be given once the chat has ended.")
    try:
        with transaction.atomic():
            return Feedback.objects.create(session=session, rating=rating, comment=comment)
    except IntegrityError as exc:
        from config.exceptions import Conflict

        raise Conflict("Feedback for this session was already given.") from exc


def transcript_access_record(*, actor: User, conversation_id: int, via: str, after_seq: int = 0) -> None:
    TranscriptAccess.objects.create(actor=actor, conversation_id=conversation_id, via=via, after_seq=after_seq)


@dataclass
class TranscriptPage:
    conversation_id: int
    after_seq: int
    messages: list[Message]
    last_seq: int
    has_more: bool
    last_read_seq: int | None


def transcript_read(*, user: User, grant: Any, after_seq: int, limit: int, via: str) -> TranscriptPage:
    """One page of messages after `after_seq`, oldest first. A supervisor reading a
    conversation they are not part of leaves an audit row (TranscriptAccess)."""
    from .selectors import message_list_since

    if after_seq < 0:
        raise InvalidInput("`after_seq` must be 0 or more.")
    limit = max(1, min(limit, int(setting("CHAT_SYNC_PAGE", 200))))
    if grant.oversight:
        transcript_access_record(actor=user, conversation_id=grant.conversation.id, via=via, after_seq=after_seq)
    rows = message_list_since(conversation_id=grant.conversation.id, after_seq=after_seq, limit=limit + 1)
    last_seq = Conversation.objects.values_list("last_seq", flat=True).get(pk=grant.conversation.id)
    return TranscriptPage(
        conversation_id=grant.conversation.id,
        after_seq=after_seq,
        messages=rows[:limit],
        last_seq=last_seq,
        has_more=len(rows) > limit,
        last_read_seq=grant.participant.last_read_seq if grant.participant else None,
    )


def session_observe(*, session: Session, supervisor: User, on: bool) -> bool:
    """A supervisor starts (or stops) watching a live session: they receive its events
    (staff payloads) without being able to write. Starting is audited like a read."""
    now = timezone.now()
    with transaction.atomic():
        existing = Participant.objects.filter(conversation_id=session.conversation_id, user=supervisor).first()
        if existing is not None and existing.role != ParticipantRole.OBSERVER:
            return on  # already in the conversation for real (e.g. after a transfer)
        if not on:
            Participant.objects.filter(pk=getattr(existing, "pk", None)).update(left_at=now)
            return False
        if session.state not in (SessionState.QUEUED, SessionState.ACTIVE):
            raise SessionClosed()
        # Not _join: watching is not activity, so it must not postpone the silence timeout.
        Participant.objects.update_or_create(
            conversation_id=session.conversation_id, user=supervisor,
            defaults={"role": ParticipantRole.OBSERVER, "left_at": None, "joined_at": now},
        )
        transcript_access_record(actor=supervisor, conversation_id=session.conversation_id, via="observe")
        events.join_conversation([supervisor.id], session.conversation_id)
    return True
