"""config.sql.sql_insert stores the same row as Model.objects.create (defaults, auto_now,
JSON, enums, UUIDs, datetimes) on both SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from config.sql import sql_insert
from triage.models import Assessment, ModelState

pytestmark = [pytest.mark.django_db]


def _row(obj) -> dict:
    row = type(obj).objects.filter(pk=obj.pk).values().get()
    return {k: v for k, v in row.items() if k not in ("id", "source_id", "created_at", "updated_at")}


def test_sql_insert_matches_orm_create(make_user):
    author = make_user()
    now = timezone.now()
    values = dict(source_type="chat_message", author_id=author.id, conversation_id=7, level="high", score=0.8,
                  categories=["self_harm"], flags={"intent": True}, evidence=[{"span": [0, 4]}], toxicity=None,
                  action="escalate", versions={"engine": "x"}, model_state=ModelState.PENDING, model_dispatched_at=now)
    by_orm = Assessment.objects.create(source_id=1, **values)
    by_sql = sql_insert(Assessment, source_id=2, **values)
    assert by_sql.pk and by_sql.pk != by_orm.pk
    assert _row(by_sql) == _row(by_orm)
    stored = Assessment.objects.get(pk=by_sql.pk)
    assert stored.model_state == "pending" and stored.flags == {"intent": True} and stored.created_at and stored.updated_at


def test_sql_insert_message_with_uuid(make_user):
    from chat.models import Conversation, Message

    sender = make_user()
    conversation = Conversation.objects.create()
    cmid = uuid.uuid4()
    message = sql_insert(Message, conversation_id=conversation.pk, seq=1, sender_id=sender.pk, sender_role=sender.role,
                         kind="text", body="hello", client_msg_id=cmid, sent_at=timezone.now())
    stored = Message.objects.get(pk=message.pk)
    assert stored.client_msg_id == cmid and stored.body == "hello" and stored.assessment_id is None


def test_sql_insert_with_a_statement_before_it(make_user):
    """The chat path's seq UPDATE travels with the message INSERT (one round trip on
    PostgreSQL, two statements on SQLite): both apply, and the new id is the INSERT's.
    Body text with quotes, percent signs and semicolons stays data."""
    from django.db import connection

    from chat.models import Conversation, Message
    from config.sql import update_statement

    sender = make_user()
    conversation = Conversation.objects.create()
    body = "it's 100% fine; DROP TABLE x; -- %s %(a)s"
    before = update_statement(Conversation, conversation.pk, last_seq=5,
                              last_activity_at=connection.ops.adapt_datetimefield_value(timezone.now()))
    message = sql_insert(Message, before=[before], conversation_id=conversation.pk, seq=5, sender_id=sender.pk,
                         sender_role=sender.role, kind="text", body=body, client_msg_id=uuid.uuid4(), sent_at=timezone.now())
    assert Message.objects.get(pk=message.pk).body == body
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 5


def test_sql_insert_failure_after_the_statement_before_it_rolls_both_back(make_user):
    from django.db import IntegrityError, connection, transaction

    from chat.models import Conversation, Message
    from config.sql import update_statement

    sender = make_user()
    conversation = Conversation.objects.create()
    cmid = uuid.uuid4()
    Message.objects.create(conversation=conversation, seq=1, sender=sender, sender_role=sender.role, kind="text",
                           body="first", client_msg_id=cmid, sent_at=timezone.now())
    before = update_statement(Conversation, conversation.pk, last_seq=2,
                              last_activity_at=connection.ops.adapt_datetimefield_value(timezone.now()))
    with pytest.raises(IntegrityError), transaction.atomic():  # same (sender, client_msg_id)
        sql_insert(Message, before=[before], conversation_id=conversation.pk, seq=2, sender_id=sender.pk,
                   sender_role=sender.role, kind="text", body="again", client_msg_id=cmid, sent_at=timezone.now())
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 0
    assert Message.objects.filter(conversation=conversation).count() == 1


def test_sql_insert_links_the_new_row_back(make_user):
    """The chat path stores a message's assessment and points the message at it in one
    statement on PostgreSQL (an INSERT inside the UPDATE's WITH), two elsewhere."""
    from chat.models import Conversation, Message

    sender = make_user()
    conversation = Conversation.objects.create()
    message = Message.objects.create(conversation=conversation, seq=1, sender=sender, sender_role=sender.role,
                                     kind="text", body="hi", client_msg_id=uuid.uuid4(), sent_at=timezone.now())
    assessment = sql_insert(Assessment, link=(Message, message.pk, "assessment_id"), source_type="chat_message",
                            source_id=message.pk, author_id=sender.id, level="none", action="allow")
    assert Message.objects.get(pk=message.pk).assessment_id == assessment.pk
    assert Assessment.objects.get(pk=assessment.pk).source_id == message.pk


def test_sql_insert_link_to_a_missing_row_raises_and_keeps_nothing(make_user):
    from django.db import transaction

    from chat.models import Message

    author = make_user()
    with pytest.raises(Message.DoesNotExist), transaction.atomic():
        sql_insert(Assessment, link=(Message, 987654321, "assessment_id"), source_type="chat_message",
                   source_id=987654321, author_id=author.id, level="none", action="allow")
    assert not Assessment.objects.filter(source_id=987654321).exists()


def _reserve(model) -> int:
    """An id for `model` as the chat path reserves it (PostgreSQL), or a free one elsewhere."""
    from django.db import connection
    from django.db.models import Max

    from config.sql import reserve_id_sql

    with connection.cursor() as cursor:
        expression = reserve_id_sql(model, cursor)
        if expression is None:
            return (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1000
        cursor.execute(f"SELECT {expression}")
        return cursor.fetchone()[0]


def test_a_young_persons_message_and_its_assessment_in_one_round_trip(make_user):
    """The chat path with ids reserved: seq UPDATE, the message INSERT (already pointing at
    its assessment: the foreign key is checked at commit) and the assessment INSERT as one
    execute on PostgreSQL; the same rows as stored one by one."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from chat.models import Conversation, Message
    from config.sql import insert_statement, update_statement

    sender = make_user()
    conversation = Conversation.objects.create()
    message_id, assessment_id = _reserve(Message), _reserve(Assessment)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        seq = update_statement(Conversation, conversation.pk, last_seq=1,
                               last_activity_at=connection.ops.adapt_datetimefield_value(timezone.now()))
        insert, message = insert_statement(Message, id=message_id, assessment_id=assessment_id, conversation_id=conversation.pk,
                                           seq=1, sender_id=sender.pk, sender_role=sender.role, kind="text",
                                           body="it's 100%; fine", client_msg_id=uuid.uuid4(), sent_at=timezone.now())
        assessment = sql_insert(Assessment, before=[seq, insert], id=assessment_id, source_type="chat_message",
                                source_id=message_id, author_id=sender.id, level="none", action="allow")
    assert assessment.pk == assessment_id and message.pk == message_id
    stored = Message.objects.get(pk=message_id)
    assert stored.assessment_id == assessment_id and stored.body == "it's 100%; fine" and stored.seq == 1
    assert Assessment.objects.get(pk=assessment_id).source_id == message_id
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 1
    if connection.vendor == "postgresql":
        assert len([q for q in queries.captured_queries if "INSERT" in q["sql"]]) == 1  # one execute for all three


def test_insert_statement_needs_the_id():
    from chat.models import Message
    from config.sql import insert_statement

    with pytest.raises(ValueError, match="reserve_id_sql"):
        insert_statement(Message, seq=1, body="x")


def _state(obj) -> tuple:
    return type(obj), dict(obj.__dict__, _state=None), obj._state.adding, obj._state.db, obj.get_deferred_fields()


def test_loaded_instance_is_what_from_db_builds():
    """loaded_instance builds its instances without Model.__init__ (cheaper, chat path);
    they hold the same values, deferred fields and state as from_db's, and save() writes
    only what was loaded."""
    from django.db.models.signals import pre_init

    from chat.models import Conversation, Participant
    from config.sql import loaded_instance

    values = dict(id=4, conversation_id=9, user_id=3, role="young_person")
    fast = loaded_instance(Participant, **values)
    reference = Participant.from_db("default", list(values), list(values.values()))
    assert _state(fast) == _state(reference)
    assert fast.get_deferred_fields() == {"joined_at", "left_at", "last_read_seq"}

    # A pre_init receiver for the model would be skipped: then from_db builds it, signals and all.
    seen = []

    def receiver(sender, **kwargs):
        seen.append(sender)

    pre_init.connect(receiver, sender=Participant)
    try:
        assert _state(loaded_instance(Participant, **values)) == _state(reference) and seen == [Participant]
    finally:
        pre_init.disconnect(receiver, sender=Participant)

    conversation = Conversation.objects.create()
    loaded = loaded_instance(Conversation, id=conversation.id, last_seq=41)
    loaded.save()  # writes last_seq only: the deferred fields keep their stored values
    stored = Conversation.objects.get(pk=conversation.id)
    assert stored.last_seq == 41 and stored.created_at == conversation.created_at


def _adapted(value):
    # Jsonb (and any adapter object) compares by what it wraps, and how it writes it.
    return (value.obj, value.dumps) if hasattr(value, "obj") else value


@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime")
def test_inserts_adapt_each_value_as_the_fields_own_get_db_prep_save_does():
    """_insert hands int, str, float, bool, UUID, aware datetime and None values of
    Django's own field classes to the driver as they are on PostgreSQL (where the fields'
    get_db_prep_save gives them back unchanged); everything else still goes through it,
    and on every other database everything does."""
    from django.core.serializers.json import DjangoJSONEncoder
    from django.db import connection, models

    from chat.models import Conversation, Message
    from config.sql import _insert, _plain_adapting

    aware, naive = timezone.now(), timezone.now().replace(tzinfo=None)
    rows = [
        (Message, dict(id=1, conversation_id=2, seq=3, sender_id=None, sender_role="young_person", kind="text",
                       body="it's fine", client_msg_id=uuid.uuid4(), sent_at=aware, assessment_id=None)),
        (Message, dict(id="1", conversation_id=2.0, seq=True, sender_id="4", sender_role=None, kind="text",
                       body="x", client_msg_id=str(uuid.uuid4()), sent_at=naive, assessment_id=5)),
        (Assessment, dict(id=1, source_type="chat_message", source_id=2, author_id=3, conversation_id=None,
                          thread_id=None, level="none", score=0.0, categories=[], flags={"intent": False},
                          evidence=[], toxicity=None, pii=[], action="allow", versions={"engine": "1"},
                          model_state="pending", model_attempts=0, model_dispatched_at=aware, model_claim=None,
                          model_claimed_at=None, model_done_at=None, created_at=aware, updated_at=naive)),
        (Assessment, dict(id=1, source_type="chat_message", source_id=2, categories=("a",), flags="text",
                          evidence=[{"start": 0, "text": "ünï"}], toxicity={"toxicity": 0.5}, pii=7, versions=None)),
        (Assessment, dict(id=1, source_type="chat_message", source_id=2, score=1, model_attempts="2",
                          model_dispatched_at=naive)),
        (Conversation, dict(id=1, last_seq=0, created_at=aware, last_activity_at=aware)),
    ]
    for model, values in rows:
        _, params, row = _insert(model, values)
        fields = [f for f in model._meta.concrete_fields]
        expected = [f.get_db_prep_save(row[f.attname], connection) for f in fields]
        assert [_adapted(p) for p in params] == [_adapted(e) for e in expected], model
        assert [type(p) for p in params] == [type(e) for e in expected], model

    def plain(field, vendor="postgresql"):
        return _plain_adapting(field, vendor, type(connection.ops))[0]

    body = Message._meta.get_field("body")
    assert str in plain(body) and not plain(body, "sqlite")
    assert plain(Message._meta.get_field("sender")) == frozenset({int, type(None)})
    from django.db.backends.postgresql.operations import DatabaseOperations

    flags = Assessment._meta.get_field("flags")
    assert _plain_adapting(flags, "postgresql", DatabaseOperations)[0] == frozenset({dict, list, type(None)})  # Jsonb
    assert not _plain_adapting(models.JSONField(encoder=DjangoJSONEncoder), "postgresql", DatabaseOperations)[0]
    assert not _plain_adapting(flags, "postgresql", type("Other", (DatabaseOperations,), {
        "adapt_json_value": lambda self, value, encoder: value}))[0]  # a backend that adapts JSON its own way

    class Shouting(models.TextField):  # a subclass may adapt its own way: always asked
        def get_prep_value(self, value):
            return super().get_prep_value(value).upper()

    assert not plain(Shouting())


@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime")
def test_prep_value_is_the_fields_own_get_db_prep_save():
    """The locking read's parameters (chat.services.send_context_params) go through
    config.sql.prep_value: what the field's get_db_prep_save gives, of the same type, on
    this database and, through a SQLite connection's wrapper, where it converts them."""
    from django.db import connection, connections

    from chat.models import Conversation, Message
    from config.sql import prep_value

    aware, naive = timezone.now(), timezone.now().replace(tzinfo=None)
    key = uuid.uuid4()
    cases = [(Message, "client_msg_id", key), (Message, "client_msg_id", str(key)), (Message, "client_msg_id", None),
             (Message, "sent_at", aware), (Message, "sent_at", naive), (Message, "sent_at", None),
             (Message, "sender_id", 4), (Message, "sender_id", "4"), (Conversation, "last_seq", 7),
             (Assessment, "flags", {"intent": False}), (Assessment, "pii", [])]
    wrappers = [connection]
    if connection.vendor != "sqlite":
        from django.db.backends.sqlite3.base import DatabaseWrapper

        wrappers.append(DatabaseWrapper({**connections.settings["default"], "NAME": ":memory:", "TIME_ZONE": None}))
    for db in wrappers:
        for model, attname, value in cases:
            field = next(f for f in model._meta.concrete_fields if f.attname == attname)
            got, expected = prep_value(model, attname, value, db), field.get_db_prep_save(value, db)
            assert _adapted(got) == _adapted(expected) and type(got) is type(expected), (db.vendor, attname, value)
