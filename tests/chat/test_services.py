"""Services and selectors: silence timeout, integration contracts, estimates, races."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from chat import selectors, services
from chat.exceptions import AlreadyTaken, NotParticipant, QueueEmpty, RateLimited
from chat.models import Conversation, CounsellorStatus, Message, Session

pytestmark = [pytest.mark.django_db]


def _active(make_user, body="hello"):
    yp = make_user(Role.YOUNG_PERSON)
    co = make_user(Role.COUNSELLOR)
    result = services.session_request(young_person=yp, topic="t", body=body)
    services.counsellor_status_set(user=co, status="available")
    session = services.session_accept(counsellor=co, session_id=result.session.id)
    return yp, co, session


def test_silent_session_is_closed_with_a_message(make_user, capture_events, settings, django_capture_on_commit_callbacks):
    settings.CHAT_SILENCE_TIMEOUT_S = 600
    yp, co, session = _active(make_user)
    now = timezone.now()
    assert services.sessions_close_silent(now=now + dt.timedelta(seconds=599)) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sessions_close_silent(now=now + dt.timedelta(seconds=601)) == [session.id]
    session.refresh_from_db()
    assert session.state == "ended" and session.end_reason == "silence" and session.ended_by is None
    last = Message.objects.filter(conversation_id=session.conversation_id).order_by("-seq").first()
    assert last.kind == "system" and "quiet" in last.body
    pushed = {payload["type"] for group, payload in capture_events if group == f"user.{yp.id}"}
    assert {"session.ended", "message.new"} <= pushed
    # Idempotent: a second run (at-least-once delivery) changes nothing.
    assert services.sessions_close_silent(now=now + dt.timedelta(seconds=900)) == []
    assert services.session_close_if_silent(session_id=session.id, now=now + dt.timedelta(days=1)) is False


def test_activity_postpones_the_silence_timeout(make_user, settings):
    settings.CHAT_SILENCE_TIMEOUT_S = 600
    yp, co, session = _active(make_user)
    later = timezone.now() + dt.timedelta(seconds=500)
    services.message_send(sender=yp, conversation_id=session.conversation_id, client_msg_id=uuid.uuid4(), body="still here", now=later)
    assert services.sessions_close_silent(now=later + dt.timedelta(seconds=300)) == []


def test_integration_contracts_for_triage_and_escalation(make_user):
    yp, co, session = _active(make_user, body="Things are hard at home")
    for i in range(6):
        services.message_send(sender=yp if i % 2 else co, conversation_id=session.conversation_id, client_msg_id=uuid.uuid4(), body=f"m{i}")
    last = Message.objects.filter(conversation_id=session.conversation_id).order_by("-seq").first()
    info = selectors.triage_source_message(last.id)
    assert info.text == "m5" and info.author_id == yp.id and info.conversation_id == session.conversation_id
    assert [c["body"] for c in info.context] == ["m0", "m1", "m2", "m3", "m4"]
    assert set(info.context[0]) == {"sender", "role", "body", "sent_at"} and info.context[0]["role"] == "counsellor"
    # The model layer reads only the text: no context query.
    with CaptureQueriesContext(connection) as queries:
        bare = selectors.triage_source_message(last.id, context=False)
    assert bare.text == "m5" and bare.context == [] and len(queries) == 1
    req = selectors.triage_source_request(session.id)
    assert req.text == "t\nThings are hard at home" and req.author_id == yp.id and req.context == []
    # The model layer's batches read the same texts in one query per source type; a source
    # that is gone is absent.
    from triage.services import source_texts

    messages = list(Message.objects.filter(conversation_id=session.conversation_id).order_by("seq"))
    with CaptureQueriesContext(connection) as queries:
        texts = source_texts(source_type="chat_message", source_ids=[m.id for m in messages] + [10**9])
    assert texts == {m.id: selectors.triage_source_message(m.id).text for m in messages} and len(queries) == 1
    assert source_texts(source_type="session_request", source_ids=[session.id, 10**9]) == {session.id: req.text}
    assert selectors.conversation_participant_ids(session.conversation_id) == [yp.id, co.id]
    system = services.message_post_system(conversation_id=session.conversation_id, body="A clinician is joining.")
    assert system.sender is None and system.kind == "system" and system.seq == last.seq + 1
    from triage.models import Assessment

    assessed = Assessment.objects.filter(source_type="chat_message").values_list("source_id", flat=True)
    staff_ids = set(Message.objects.filter(sender=co).values_list("id", flat=True))
    assert not staff_ids & set(assessed)  # staff messages are not triaged
    assert Assessment.objects.filter(source_type="session_request", source_id=session.id).exists()


def test_risky_request_jumps_the_queue_and_escalates(make_user):
    from triage.models import Escalation

    first = services.session_request(young_person=make_user(Role.YOUNG_PERSON), body="hi")
    risky = services.session_request(young_person=make_user(Role.YOUNG_PERSON), body="I want to kill myself tonight")
    assert risky.position == 1 and risky.session.risk_level in ("high", "imminent")
    assert Escalation.objects.filter(source_type="session_request", source_id=risky.session.id).exists()
    assert selectors.queue_position(session=Session.objects.get(pk=first.session.id)) == 2
    crisis = Message.objects.filter(conversation_id=risky.session.conversation_id, kind="system").get()
    assert "999" in crisis.body


def test_eta_estimate_uses_handling_time_and_available_capacity(make_user, settings):
    settings.CHAT_DEFAULT_HANDLING_S = 600
    est = selectors.queue_estimate()
    assert est.capacity == 0 and est.eta_s(2) == 1200
    co = make_user(Role.COUNSELLOR)
    CounsellorStatus.objects.create(user=co, status="available", capacity=3)
    assert selectors.queue_estimate().eta_s(3) == 600


def test_operating_hours(settings):
    settings.TIME_ZONE = "UTC"
    settings.CHAT_OPERATING_HOURS = None
    monday_3am = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
    assert selectors.operating_hours_open(now=monday_3am)
    settings.CHAT_OPERATING_HOURS = {"days": [0, 1, 2, 3, 4], "open": "09:00", "close": "17:00"}
    assert not selectors.operating_hours_open(now=monday_3am)
    assert selectors.operating_hours_open(now=monday_3am.replace(hour=10))
    settings.CHAT_OPERATING_HOURS = {"days": [6], "open": "20:00", "close": "04:00"}  # Sunday night
    assert selectors.operating_hours_open(now=monday_3am)
    assert not selectors.operating_hours_open(now=monday_3am.replace(hour=5))


def test_one_open_session_per_young_person(make_user):
    yp = make_user(Role.YOUNG_PERSON)
    a = services.session_request(young_person=yp, body="one")
    b = services.session_request(young_person=yp, body="two")
    assert a.session.id == b.session.id and b.resumed
    assert Session.objects.filter(young_person=yp).count() == 1
    assert Conversation.objects.count() == 1


@pytest.mark.real
def test_two_counsellors_racing_for_one_request_on_postgres(make_user):
    """Real concurrency (two connections, PostgreSQL row locks): exactly one wins."""
    yp = make_user(Role.YOUNG_PERSON)
    request = services.session_request(young_person=yp, body="please")
    racers = [make_user(Role.COUNSELLOR) for _ in range(4)]
    for co in racers:
        services.counsellor_status_set(user=co, status="available")
    for specific in (False, True):
        if specific:
            Session.objects.filter(pk=request.session.id).update(state="queued", counsellor=None)
        barrier = threading.Barrier(len(racers))
        outcomes: list = []

        def race(co, specific=specific, barrier=barrier, outcomes=outcomes):
            try:
                barrier.wait()
                s = services.session_accept(counsellor=co, session_id=request.session.id if specific else None)
                outcomes.append(("won", co.id, s.id))
            except (AlreadyTaken, QueueEmpty) as exc:
                outcomes.append(("lost", co.id, exc.code))
            finally:
                connection.close()

        threads = [threading.Thread(target=race, args=(co,)) for co in racers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        winners = [o for o in outcomes if o[0] == "won"]
        assert len(winners) == 1 and len(outcomes) == len(racers), outcomes
        session = Session.objects.get(pk=request.session.id)
        assert session.counsellor_id == winners[0][1]


@pytest.mark.real
def test_silence_sweeper_runs_in_a_real_celery_worker(make_user, celery_worker, settings):
    """The beat task, sent through the broker to a worker process: ids serialise, the
    service runs against the same database, and a second delivery is harmless."""
    from chat.tasks import session_close_if_silent, sessions_close_silent

    yp, co, session = _active(make_user)
    Conversation.objects.filter(pk=session.conversation_id).update(last_activity_at=timezone.now() - dt.timedelta(days=1))
    sessions_close_silent.delay()
    session_close_if_silent.delay(session.id)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        session.refresh_from_db()
        if session.state == "ended":
            break
        time.sleep(0.2)
    assert session.state == "ended" and session.end_reason == "silence"
    time.sleep(0.5)
    assert Message.objects.filter(conversation_id=session.conversation_id, body__contains="quiet").count() == 1


def test_asking_again_keeps_new_words_once(make_user):
    yp = make_user(Role.YOUNG_PERSON)
    first = services.session_request(young_person=yp, body="I need to talk")
    services.session_request(young_person=yp, body="I need to talk")  # the app resent its request
    services.session_request(young_person=yp, body="it's about my dad")
    services.session_request(young_person=yp, body="it's about my dad")
    bodies = list(Message.objects.filter(conversation_id=first.session.conversation_id).order_by("seq").values_list("body", flat=True))
    assert bodies == ["I need to talk", "it's about my dad"]


def test_message_rate_is_a_sliding_window_over_stored_messages_and_needs_no_cache(make_user, settings):
    """The per-person limit counts the messages the person stored in the last window, in
    the statement that takes the conversation lock: refused sends do not count, and the
    cache (Redis) is not involved, so messages are still stored and acknowledged while
    Redis restarts."""
    settings.CHAT_MESSAGE_RATE = 2
    settings.CHAT_MESSAGE_RATE_WINDOW_S = 10
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/0"}}  # nothing listens there
    yp, co, session = _active(make_user)
    t0 = timezone.now() + dt.timedelta(hours=1)  # the opening message falls outside every window below

    def send(at_s: float, who=yp):
        return services.message_send(sender=who, conversation_id=session.conversation_id, client_msg_id=uuid.uuid4(),
                                     body=f"at {at_s}", now=t0 + dt.timedelta(seconds=at_s))

    send(0)
    send(0.1)
    with pytest.raises(RateLimited):
        send(1)
    send(1, who=co)  # per person, not per conversation
    send(10.5)  # the first two have left the window; the refused one never counted
    send(10.6)
    with pytest.raises(RateLimited):
        send(10.7)
    stored = Message.objects.filter(conversation_id=session.conversation_id, sender=yp, body__startswith="at ")
    assert sorted(stored.values_list("body", flat=True)) == ["at 0", "at 0.1", "at 10.5", "at 10.6"]


def test_message_send_authorises_under_the_lock(make_user):
    """message_send checks the sender itself (transport calls no access_* first): other
    people, people who left and unknown conversations all get not_participant."""
    yp, co, session = _active(make_user)
    stranger = make_user(Role.COUNSELLOR)
    for who, conversation_id in ((stranger, session.conversation_id), (yp, session.conversation_id + 999)):
        with pytest.raises(NotParticipant):
            services.message_send(sender=who, conversation_id=conversation_id, client_msg_id=uuid.uuid4(), body="hi")
    other = make_user(Role.COUNSELLOR)
    services.counsellor_status_set(user=other, status="available")
    services.session_transfer(session=session, from_user=co, to_user_id=other.id, note="")
    with pytest.raises(NotParticipant):  # transferred out: no longer live in the conversation
        services.message_send(sender=co, conversation_id=session.conversation_id, client_msg_id=uuid.uuid4(), body="hi")
    assert not Message.objects.filter(conversation_id=session.conversation_id, body="hi").exists()


def test_a_risky_message_while_waiting_moves_the_request_up(make_user):
    first = services.session_request(young_person=make_user(Role.YOUNG_PERSON), body="hi")
    yp = make_user(Role.YOUNG_PERSON)
    waiting = services.session_request(young_person=yp, body="hello")
    assert waiting.position == 2
    services.message_send(sender=yp, conversation_id=waiting.session.conversation_id, client_msg_id=uuid.uuid4(),
                          body="I want to kill myself tonight")
    session = Session.objects.get(pk=waiting.session.id)
    assert session.risk_level in ("high", "imminent") and selectors.queue_position(session=session) == 1
    assert selectors.queue_position(session=Session.objects.get(pk=first.session.id)) == 2


def test_triage_failure_keeps_the_message_and_routes_it_to_review(make_user, monkeypatch):
    from triage import engine

    yp, co, session = _active(make_user)

    def broken(text):
        raise RuntimeError("lexicon failed to load")

    monkeypatch.setattr(engine, "assess_inline", broken)
    result = services.message_send(sender=yp, conversation_id=session.conversation_id, client_msg_id=uuid.uuid4(), body="are you there")
    result.message.refresh_from_db()
    assert result.created and result.message.assessment.action == "review"
    assert result.message.assessment.level == "moderate" and result.message.assessment.flags == {"inline_failed": True}
