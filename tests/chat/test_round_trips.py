"""The send path's transaction on PostgreSQL: its BEGIN travels with the locking read and,
where nothing is written after the message, its COMMIT with the last INSERT
(config.sql.execute_opening / execute_closing), so a chat message costs two round trips.
What a block stores is still all or nothing, and the driver's autocommit flag is Django's
again once the block ends."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg.pq import TransactionStatus

from accounts.models import Role
from chat import services
from chat.models import Conversation, Message, Session
from config.sql import execute_opening, sql_insert, update_statement
from triage.models import Escalation

pytestmark = [pytest.mark.real]


class Boom(Exception):
    pass


def _status() -> str:
    return TransactionStatus(connection.connection.pgconn.transaction_status).name


def _open(value: int = 1) -> None:
    with connection.cursor() as cursor:
        execute_opening(cursor, "SELECT %s", [value])
        assert cursor.fetchone() == (value,)


def _store(conversation: Conversation, sender, *, seq: int, last: bool, **extra) -> Message:
    seq_statement = update_statement(Conversation, conversation.pk, last_seq=seq,
                                     last_activity_at=connection.ops.adapt_datetimefield_value(timezone.now()))
    return sql_insert(Message, before=[seq_statement], last=last, conversation_id=conversation.pk, seq=seq,
                      sender_id=sender.pk, sender_role=sender.role, kind="text", body="hi",
                      client_msg_id=uuid.uuid4(), sent_at=timezone.now(), **extra)


def _driver_matches_django() -> bool:
    return connection.connection.autocommit == connection.get_autocommit()


def test_begin_travels_with_the_first_statement_and_a_failure_keeps_nothing():
    conversation = Conversation.objects.create()
    with pytest.raises(Boom), transaction.atomic():
        _open()
        # psycopg sent no BEGIN of its own (its flag says autocommit), yet the server is in
        # the transaction the merged BEGIN opened.
        assert connection.connection.autocommit and _status() == "INTRANS"
        Conversation.objects.filter(pk=conversation.pk).update(last_seq=9)
        raise Boom
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 0
    assert _driver_matches_django()
    with transaction.atomic():
        assert not connection.connection.autocommit  # the next block starts as Django expects


def test_commit_travels_with_the_last_insert_and_on_commit_waits_for_the_block(make_user):
    sender = make_user()
    conversation = Conversation.objects.create()
    committed = []
    with transaction.atomic():
        _open()
        transaction.on_commit(lambda: committed.append(True))
        message = _store(conversation, sender, seq=1, last=True)
        assert _status() == "IDLE"  # the rows are committed with that round trip
        assert committed == []
    assert committed == [True]
    assert Message.objects.get(pk=message.pk).seq == 1 and _driver_matches_django()


def test_a_deferred_constraint_failing_at_the_merged_commit_stores_nothing(make_user):
    sender = make_user()
    conversation = Conversation.objects.create()
    with pytest.raises(IntegrityError), transaction.atomic():
        _open()
        _store(conversation, sender, seq=1, last=True, assessment_id=987654321)  # no such assessment
    assert not Message.objects.filter(conversation=conversation).exists()
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 0
    assert _driver_matches_django()
    _store(conversation, sender, seq=1, last=False)  # the connection is fine afterwards


def test_a_write_after_the_merged_commit_is_not_autocommitted(make_user):
    sender = make_user()
    conversation = Conversation.objects.create()
    with pytest.raises(Boom), transaction.atomic():
        _open()
        _store(conversation, sender, seq=1, last=True)
        Conversation.objects.filter(pk=conversation.pk).update(last_seq=42)
        raise Boom
    # The message committed with its COMMIT; the write after it was in a transaction of its
    # own, rolled back with the block.
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 1
    assert Message.objects.filter(conversation=conversation).count() == 1


def test_nothing_merges_inside_an_enclosing_block(make_user):
    sender = make_user()
    conversation = Conversation.objects.create()
    with pytest.raises(Boom), transaction.atomic():
        with transaction.atomic():
            _open()
            assert not connection.connection.autocommit
        with transaction.atomic():
            _store(conversation, sender, seq=1, last=True)
            assert _status() == "INTRANS"
        raise Boom
    assert not Message.objects.filter(conversation=conversation).exists()


def _queued(make_user):
    young = make_user(Role.YOUNG_PERSON)
    request = services.session_request(young_person=young, topic="t", body="hello")
    return young, request.session


def _send(young, session, body):
    with CaptureQueriesContext(connection) as queries:
        result = services.message_send(sender=young, conversation_id=session.conversation_id,
                                       client_msg_id=uuid.uuid4(), body=body)
    # Django logs its transaction control as "BEGIN" / "COMMIT" entries (4.2+) whether or
    # not the driver sent them: only the statements that went to the server count here.
    return result, [q["sql"] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT", "ROLLBACK")]


def test_a_message_is_two_round_trips_begin_with_the_read_and_commit_with_the_insert(make_user):
    young, session = _queued(make_user)
    result, sql = _send(young, session, "school was ok today")
    assert len(sql) == 2 and sql[0].startswith("BEGIN; SELECT") and sql[1].endswith("; COMMIT")
    stored = Message.objects.select_related("assessment").get(pk=result.message.pk)
    assert stored.assessment.level == "none" and stored.seq == result.message.seq


def test_a_message_that_moves_the_request_up_commits_after_the_move(make_user):
    young, session = _queued(make_user)
    result, sql = _send(young, session, "i hate myself")
    assert sql[0].startswith("BEGIN; ") and not any(s.endswith("; COMMIT") for s in sql)
    assert Session.objects.get(pk=session.pk).priority == 2
    assert Message.objects.get(pk=result.message.pk).assessment.level == "moderate"


def test_an_escalating_message_stores_its_escalation_and_resources_in_the_same_transaction(make_user):
    young, session = _queued(make_user)
    result, sql = _send(young, session, "i want to end it all tonight")
    assert not any(s.endswith("; COMMIT") for s in sql)
    assert Escalation.objects.filter(source_type="chat_message", source_id=result.message.pk).exists()
    assert [m.kind for m in result.extra] == ["system"]
    assert Message.objects.filter(conversation_id=session.conversation_id, kind="system").exists()
