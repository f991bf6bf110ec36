"""Escalations: atomic with the message, unique, deadline chain, rota, model layer."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Role, Shift, Tier
from accounts.rota import coverage_gaps
from config.realtime import role_group, user_group
from triage import escalations as svc
from triage.models import Assessment, Escalation, EscalationAudit, ModelState
from triage.services import assessment_record

from .conftest import CRISIS

pytestmark = pytest.mark.django_db(transaction=True)


def test_escalation_is_created_in_the_same_transaction_as_the_message(make_user):
    author = make_user()
    with pytest.raises(RuntimeError), transaction.atomic():
        assessment_record(source_type="chat_message", source_id=1, author_id=author.id, text=CRISIS)
        assert Escalation.objects.filter(source_id=1).exists()  # visible inside the transaction
        raise RuntimeError("message insert failed after triage")
    assert not Escalation.objects.exists() and not Assessment.objects.exists()
    with transaction.atomic():
        assessment_record(source_type="chat_message", source_id=1, author_id=author.id, text=CRISIS)
    assert Escalation.objects.count() == 1


def test_retries_cannot_duplicate_an_escalation(make_user, crisis):
    escalation = crisis()
    author = escalation.young_person
    with transaction.atomic():
        again = assessment_record(source_type="chat_message", source_id=escalation.source_id, author_id=author.id, text=CRISIS)
    assert again.id == escalation.assessment_id
    assert Escalation.objects.count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        Escalation.objects.create(
            source_type=escalation.source_type, source_id=escalation.source_id, assessment=escalation.assessment,
            young_person=author, level="high", ack_deadline=timezone.now(),
        )


def test_ordinary_message_creates_no_escalation(make_user):
    author = make_user()
    with transaction.atomic():
        assessment_record(source_type="chat_message", source_id=5, author_id=author.id, text="this homework is killing me lol")
    assert not Escalation.objects.exists()


def test_first_notification_goes_to_the_primary_after_commit(rota, crisis, capture_events):
    escalation = crisis()
    sent = [(g, p) for g, p in capture_events if p["type"] == "escalation.new"]
    assert [g for g, _ in sent] == [user_group(rota[Tier.PRIMARY].id)]
    payload = sent[0][1]
    assert payload["escalation"]["id"] == escalation.id
    assert payload["escalation"]["message"] == CRISIS
    assert payload["escalation"]["evidence"], "the clinician sees the spans that drove it"
    assert {r["contact"] for r in payload["resources"]} >= {"116 123", "999"}
    escalation.refresh_from_db()
    assert escalation.last_notified_at is not None
    assert EscalationAudit.objects.filter(escalation=escalation, action="notified").exists()


def test_deadline_chain_with_a_controllable_clock(rota, crisis, capture_events, settings):
    settings.ESCALATION_ACK_SECONDS = {"imminent": 60, "high": 300}
    escalation = crisis()
    t0 = escalation.created_at
    step = svc.step_seconds(escalation.level)
    # The primary's client shows it (receipt) but nobody acknowledges: the chain climbs.
    svc.escalation_mark_received(user=rota[Tier.PRIMARY], escalation_ids=[escalation.id])
    capture_events.clear()

    assert svc.escalation_sweep(now=t0 + dt.timedelta(seconds=step - 1)) == {"advanced": 0, "redelivered": 0}
    svc.escalation_sweep(now=t0 + dt.timedelta(seconds=step + 1))
    assert _notified(capture_events) == {user_group(rota[Tier.PRIMARY].id)}  # re-notify the primary
    capture_events.clear()
    svc.escalation_sweep(now=t0 + dt.timedelta(seconds=2 * step + 2))
    assert user_group(rota[Tier.BACKUP].id) in _notified(capture_events)
    assert user_group(rota[Tier.MANAGER].id) not in _notified(capture_events)
    capture_events.clear()
    svc.escalation_sweep(now=t0 + dt.timedelta(seconds=3 * step + 3))
    assert user_group(rota[Tier.MANAGER].id) in _notified(capture_events)
    capture_events.clear()
    svc.escalation_sweep(now=t0 + dt.timedelta(seconds=4 * step + 4))
    assert role_group(Role.CLINICIAN) in _notified(capture_events)  # then everyone

    steps = list(EscalationAudit.objects.filter(escalation=escalation, action="deadline_missed").values_list("detail__step_name", flat=True))
    assert steps == ["primary_renotified", "backup", "manager", "everyone"]

    svc.escalation_acknowledge(user=rota[Tier.BACKUP], escalation_id=escalation.id)
    capture_events.clear()
    svc.escalation_sweep(now=t0 + dt.timedelta(seconds=10 * step))
    assert not _notified(capture_events), "an acknowledged escalation stops climbing"


def test_imminent_deadline_is_shorter_than_high(settings):
    assert svc.step_seconds("imminent") == 60 and svc.step_seconds("high") == 300


def test_nobody_primary_on_duty_goes_to_backup_and_manager_at_once(make_user, crisis, capture_events):
    now = timezone.now()
    backup, manager = make_user(Role.CLINICIAN), make_user(Role.CLINICIAN)
    Shift.objects.create(clinician=backup, tier=Tier.BACKUP, start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=1))
    Shift.objects.create(clinician=manager, tier=Tier.MANAGER, start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=1))
    crisis()
    assert _notified(capture_events) == {user_group(backup.id), user_group(manager.id)}
    assert svc.nobody_on_duty()


def test_empty_rota_still_reaches_every_clinician(crisis, capture_events):
    crisis()
    assert _notified(capture_events) == {role_group(Role.CLINICIAN), role_group(Role.SUPERVISOR)}


def test_undelivered_notification_is_resent_by_the_sweeper(rota, crisis, monkeypatch, capture_events):
    from config import realtime

    def refuse(groups, payload, **kwargs):
        raise realtime.DeliveryFailed("redis down")

    original = realtime.send_now
    monkeypatch.setattr(realtime, "send_now", refuse)
    escalation = crisis()
    escalation.refresh_from_db()
    assert escalation.last_notified_at is None
    assert EscalationAudit.objects.filter(escalation=escalation, action="notify_failed").exists()
    monkeypatch.setattr(realtime, "send_now", original)
    result = svc.escalation_sweep(now=timezone.now() + dt.timedelta(seconds=3))
    assert result["redelivered"] == 1
    escalation.refresh_from_db()
    assert escalation.last_notified_at is not None
    assert _notified(capture_events) == {user_group(rota[Tier.PRIMARY].id)}


def test_acknowledge_first_one_wins_and_resolve_needs_an_outcome(rota, crisis):
    escalation = crisis()
    primary, backup = rota[Tier.PRIMARY], rota[Tier.BACKUP]
    svc.escalation_acknowledge(user=primary, escalation_id=escalation.id)
    svc.escalation_acknowledge(user=primary, escalation_id=escalation.id)  # harmless repeat
    with pytest.raises(svc.Conflict, match=primary.display_name):
        svc.escalation_acknowledge(user=backup, escalation_id=escalation.id)
    with pytest.raises(svc.ValidationFailed):
        svc.escalation_resolve(user=primary, escalation_id=escalation.id, outcome="")
    with pytest.raises(svc.PermissionDenied):
        svc.escalation_resolve(user=backup, escalation_id=escalation.id, outcome="safety_plan")
    done = svc.escalation_resolve(user=primary, escalation_id=escalation.id, outcome="safety_plan", note="agreed plan")
    assert done.state == "resolved" and done.outcome == "safety_plan"
    actions = list(EscalationAudit.objects.filter(escalation=escalation).values_list("action", flat=True))
    assert actions[0] == "created" and "acknowledged" in actions and actions[-1] == "resolved"


def test_model_layer_raises_later_and_never_lowers(make_user, monkeypatch, rota, capture_events):
    from dataclasses import replace

    from triage import engine

    author = make_user()
    text = "sometimes i wish i was dead"
    with transaction.atomic():
        assessment = assessment_record(source_type="chat_message", source_id=77, author_id=author.id, text=text)
    assert assessment.level not in ("high", "imminent") and not Escalation.objects.exists()

    def model_says(level):
        def fake(texts):
            return [replace(engine.assess_inline(t), level=level, action="escalate") for t in texts]

        return fake

    from triage.reassess import assessment_apply_model

    monkeypatch.setattr(engine, "assess_full", model_says("high"))
    monkeypatch.setattr("triage.services.source_texts", lambda *, source_type, source_ids: dict.fromkeys(source_ids, text))
    assessment_apply_model(assessment_id=assessment.id)
    escalation = Escalation.objects.get()
    assert escalation.raised_by_model and escalation.level == "high"
    assert any(p["type"] == "escalation.new" for _, p in capture_events)

    # A later, lower opinion does not lower it; a higher one raises it.
    Assessment.objects.filter(pk=assessment.id).update(model_state=ModelState.PENDING)
    monkeypatch.setattr(engine, "assess_full", model_says("low"))
    assessment_apply_model(assessment_id=assessment.id)
    escalation.refresh_from_db()
    assert escalation.level == "high"
    Assessment.objects.filter(pk=assessment.id).update(model_state=ModelState.PENDING)
    monkeypatch.setattr(engine, "assess_full", model_says("imminent"))
    assessment_apply_model(assessment_id=assessment.id)
    escalation.refresh_from_db()
    assert escalation.level == "imminent"
    assert EscalationAudit.objects.filter(escalation=escalation, action="level_raised").exists()


def test_model_failure_routes_to_review_never_no_risk(make_user, monkeypatch):
    from triage import engine
    from triage.reassess import assessment_apply_model

    author = make_user()
    with transaction.atomic():
        assessment = assessment_record(source_type="chat_message", source_id=78, author_id=author.id, text="hello there")
    assert assessment.action == "allow"

    def broken(texts):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(engine, "assess_full", broken)
    monkeypatch.setattr("triage.services.source_texts", lambda *, source_type, source_ids: dict.fromkeys(source_ids, "hello there"))
    assessment_apply_model(assessment_id=assessment.id)
    assessment.refresh_from_db()
    assert assessment.model_state == ModelState.FAILED and assessment.action == "review"


def test_rota_coverage_lists_gaps_without_a_primary(make_user):
    start = timezone.now().replace(microsecond=0)
    doc = make_user(Role.CLINICIAN)
    Shift.objects.create(clinician=doc, tier=Tier.PRIMARY, start=start, end=start + dt.timedelta(days=3))
    Shift.objects.create(clinician=doc, tier=Tier.BACKUP, start=start + dt.timedelta(days=3), end=start + dt.timedelta(days=4))
    Shift.objects.create(clinician=doc, tier=Tier.PRIMARY, start=start + dt.timedelta(days=4), end=start + dt.timedelta(days=6))
    gaps = coverage_gaps(start=start, days=7)
    assert [(g.start - start, g.end - start) for g in gaps] == [
        (dt.timedelta(days=3), dt.timedelta(days=4)),
        (dt.timedelta(days=6), dt.timedelta(days=7)),
    ]


def test_rota_cli(make_user, capsys):
    make_user(Role.CLINICIAN, handle="dr_cli")
    call_command("rota", "add", "--clinician", "dr_cli", "--start", "2030-01-01T08:00:00+00:00", "--end", "2030-01-01T20:00:00+00:00", "--tier", "primary")
    assert "added shift" in capsys.readouterr().out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="overlapping"):
        call_command("rota", "add", "--clinician", "dr_cli", "--start", "2030-01-01T10:00:00+00:00", "--end", "2030-01-01T12:00:00+00:00", "--tier", "backup")
    with pytest.raises(CommandError, match="after start"):
        call_command("rota", "add", "--clinician", "dr_cli", "--start", "2030-01-02T10:00:00+00:00", "--end", "2030-01-02T09:00:00+00:00", "--tier", "backup")
    call_command("rota", "coverage")
    assert "GAP" in capsys.readouterr().out
    call_command("rota", "now")
    assert "nobody is on duty" in capsys.readouterr().out


def _notified(events):
    return {g for g, p in events if p["type"] == "escalation.new"}


def test_unconfirmed_delivery_is_resent_until_a_client_confirms(rota, crisis, capture_events):
    """A push into a group that silently lost its members (Redis restart) 'succeeds';
    only a client receipt proves delivery, so the sweeper re-sends until one arrives."""
    escalation = crisis()
    escalation.refresh_from_db()
    later = escalation.last_notified_at + dt.timedelta(seconds=svc.RECEIPT_WAIT_S + 1)
    capture_events.clear()
    assert svc.escalation_sweep(now=later)["redelivered"] == 1
    assert _notified(capture_events) == {user_group(rota[Tier.PRIMARY].id)}
    assert svc.escalation_mark_received(user=rota[Tier.PRIMARY], escalation_ids=[escalation.id, escalation.id]) == 1
    assert svc.escalation_mark_received(user=rota[Tier.BACKUP], escalation_ids=[escalation.id]) == 0
    capture_events.clear()
    assert svc.escalation_sweep(now=later + dt.timedelta(seconds=30))["redelivered"] == 0
    assert EscalationAudit.objects.filter(escalation=escalation, action="delivered", actor=rota[Tier.PRIMARY]).count() == 1
