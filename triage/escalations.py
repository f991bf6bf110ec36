"""Crisis escalation lifecycle: delivery, acknowledgement, deadlines, hand-over, resolution.

Reliability contract (../shared/docs/reliability.md):
- the Escalation row is created in the same transaction as the message that caused it
  (triage.services.escalation_open); nothing here runs before that commit;
- the first notification is pushed right after commit (the fast path); if the channel
  layer refuses it, `last_notified_at` stays empty and `escalation_sweep` (Celery beat,
  every few seconds, crisis queue) sends it again;
- deadlines live in the database (`next_step_at`) and only `escalation_sweep` advances
  them: re-notify the primary, then the backups, then the manager, then everyone, each
  step an audit row. No Celery ETA tasks.
- clinicians who (re)connect get every open escalation (`escalation.list`), so a lost
  push never hides one.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from accounts.models import Role, Tier, User
from accounts.rota import on_duty_ids
from config import realtime
from config.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed, WrongRole
from config.realtime import DeliveryFailed, role_group, user_group

from .models import Escalation, EscalationAudit, EscalationState, Outcome
from .services import ack_deadline_for, step_seconds  # noqa: F401  step_seconds is part of this API

logger = logging.getLogger(__name__)

ESCALATION_ROLES = frozenset({Role.CLINICIAN, Role.SUPERVISOR, Role.ADMIN})
STEP_FIRST, STEP_RENOTIFY_PRIMARY, STEP_BACKUP, STEP_MANAGER, STEP_EVERYONE = 0, 1, 2, 3, 4
STEP_NAMES = {0: "primary", 1: "primary_renotified", 2: "backup", 3: "manager", 4: "everyone"}
# Undelivered first notifications older than this are re-sent by the sweeper.
REDELIVER_AFTER_S = 2
# A notification no clinician client has confirmed receiving is re-sent after this.
RECEIPT_WAIT_S = 5


# --- access -------------------------------------------------------------------------
def require_escalation_role(user: User) -> None:
    if user.role not in ESCALATION_ROLES:
        raise WrongRole("Only duty clinicians and supervisors handle escalations.")


def access_escalation_for_staff(*, user: User, escalation_id: int, lock: bool = False) -> Escalation:
    require_escalation_role(user)
    queryset = Escalation.objects.select_related("young_person", "owner")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    escalation = queryset.filter(pk=escalation_id).first()
    if escalation is None:
        raise NotFound("No such escalation.")
    return escalation


def audit(escalation: Escalation, action: str, *, actor: User | None = None, **detail: Any) -> None:
    EscalationAudit.objects.create(escalation=escalation, actor=actor, action=action, detail=detail)


# --- payloads (one function per event; the schema lives here) -------------------------
def escalation_snapshot(escalation: Escalation) -> dict[str, Any]:
    owner = escalation.owner
    return {
        "id": escalation.id,
        "level": escalation.level,
        "categories": escalation.categories,
        "evidence": escalation.evidence,
        "message": escalation.excerpt,
        "source": {
            "type": escalation.source_type,
            "id": escalation.source_id,
            "conversation": escalation.conversation_id,
            "thread": escalation.thread_id,
        },
        "young_person": {"id": escalation.young_person_id, "handle": escalation.young_person.handle},
        "state": escalation.state,
        "owner": {"id": owner.id, "handle": owner.handle, "display_name": owner.display_name} if owner else None,
        "step": escalation.step,
        "created_at": escalation.created_at.isoformat(),
        "ack_deadline": escalation.ack_deadline.isoformat(),
        "acknowledged_at": escalation.acknowledged_at.isoformat() if escalation.acknowledged_at else None,
        "resolved_at": escalation.resolved_at.isoformat() if escalation.resolved_at else None,
        "outcome": escalation.outcome or None,
        "raised_by_model": escalation.raised_by_model,
    }


def escalation_context(escalation: Escalation) -> list[dict[str, Any]]:
    """The last messages of the conversation or thread, for the clinician."""
    from .services import source_load

    try:
        return source_load(source_type=escalation.source_type, source_id=escalation.source_id).context
    except Exception:
        # Context is a courtesy; the escalation must go out without it.
        logger.warning("no context for escalation %s", escalation.id, exc_info=True)
        return []


def payload_new(escalation: Escalation, *, context: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "escalation.new",
        "escalation": escalation_snapshot(escalation),
        "context": context,
        "resources": settings.CRISIS_RESOURCES,
    }


def payload_state(escalation: Escalation, event: str, **extra: Any) -> dict[str, Any]:
    return {"type": event, "escalation": escalation_snapshot(escalation), **extra}


# --- who gets told ---------------------------------------------------------------------
def recipients_for_step(step: int, *, at: dt.datetime | None = None) -> tuple[list[int], list[str]]:
    """(user ids, group names) to notify at a step of the chain.

    With no primary on duty the backups and manager are told at once; with nobody on
    the rota at all, every clinician and supervisor is (an escalation is never sent to
    nobody).
    """
    primary = on_duty_ids(tiers=(Tier.PRIMARY,), at=at)
    backup = on_duty_ids(tiers=(Tier.BACKUP,), at=at)
    manager = on_duty_ids(tiers=(Tier.MANAGER,), at=at)
    if step <= STEP_RENOTIFY_PRIMARY:
        users = primary or (backup + manager)
    elif step == STEP_BACKUP:
        users = primary + backup or manager
    else:
        users = primary + backup + manager
    groups = [user_group(uid) for uid in dict.fromkeys(users)]
    if not users or step >= STEP_EVERYONE:
        groups += [role_group(Role.CLINICIAN), role_group(Role.SUPERVISOR)]
    return list(dict.fromkeys(users)), groups


def nobody_on_duty(*, at: dt.datetime | None = None) -> bool:
    return not on_duty_ids(tiers=(Tier.PRIMARY,), at=at)


def state_groups(escalation: Escalation) -> list[str]:
    """State changes go to every clinician and supervisor (they see who owns what)."""
    groups = [role_group(Role.CLINICIAN), role_group(Role.SUPERVISOR)]
    if escalation.owner_id:
        groups.append(user_group(escalation.owner_id))
    return groups


# --- notification --------------------------------------------------------------------
def escalation_created_hooks(escalation: Escalation) -> None:
    """Runs inside the creating transaction; the first notification goes out after commit."""
    escalation_id = escalation.id
    transaction.on_commit(lambda: escalation_notify(escalation_id=escalation_id, reason="created"))


def escalation_notify(
    *, escalation_id: int, reason: str, now: dt.datetime | None = None, recipients: dict | None = None
) -> bool:
    """Push `escalation.new` to the people for the current step. Returns True when the
    channel layer took it (then `last_notified_at` is set), False to leave it to the sweeper.
    `recipients` memoises the rota lookup per step across one sweep."""
    now = now or timezone.now()
    escalation = Escalation.objects.select_related("young_person", "owner").filter(pk=escalation_id).first()
    if escalation is None or escalation.state != EscalationState.OPEN:
        return True
    if recipients is None:
        recipients = {}
    if escalation.step not in recipients:
        recipients[escalation.step] = recipients_for_step(escalation.step, at=now)
    users, groups = recipients[escalation.step]
    payload = payload_new(escalation, context=escalation_context(escalation))
    try:
        realtime.send_now(groups, payload, raise_errors=True)
    except DeliveryFailed:
        with transaction.atomic():
            audit(escalation, "notify_failed", step=escalation.step, reason=reason)
        return False
    with transaction.atomic():
        Escalation.objects.filter(pk=escalation.id).update(last_notified_at=now)
        audit(escalation, "notified", step=escalation.step, step_name=STEP_NAMES.get(escalation.step, "everyone"),
              recipients=users, groups=groups, reason=reason)
    return True


def escalation_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Advance overdue deadlines and re-send undelivered notifications. Idempotent;
    safe to run from several beat/worker processes at once (SKIP LOCKED)."""
    now = now or timezone.now()
    advanced = redelivered = 0
    with transaction.atomic():
        due = list(
            Escalation.objects.select_for_update(skip_locked=True)
            .filter(state=EscalationState.OPEN, next_step_at__lte=now)
            .order_by("next_step_at")[:500]
        )
        for escalation in due:
            escalation.step = min(escalation.step + 1, STEP_EVERYONE)
            escalation.next_step_at = ack_deadline_for(escalation.level, now)
            escalation.save(update_fields=["step", "next_step_at"])
            audit(escalation, "deadline_missed", step=escalation.step, step_name=STEP_NAMES[escalation.step])
    recipients: dict = {}
    for escalation in due:
        advanced += 1
        escalation_notify(escalation_id=escalation.id, reason="deadline", now=now, recipients=recipients)
    # Not delivered: either the push failed (no last_notified_at) or no clinician client
    # has confirmed receipt since the last push.
    stale = (
        Escalation.objects.filter(state=EscalationState.OPEN, delivered_at__isnull=True)
        .filter(
            models.Q(last_notified_at__isnull=True, created_at__lte=now - dt.timedelta(seconds=REDELIVER_AFTER_S))
            | models.Q(last_notified_at__lte=now - dt.timedelta(seconds=RECEIPT_WAIT_S))
        )
        .values_list("id", flat=True)[:1000]
    )
    advanced_ids = {e.id for e in due}
    for escalation_id in stale:
        if escalation_id not in advanced_ids:
            redelivered += escalation_notify(escalation_id=escalation_id, reason="redeliver", now=now, recipients=recipients)
    return {"advanced": advanced, "redelivered": redelivered}


# --- clinician actions -------------------------------------------------------------------
def escalation_acknowledge(*, user: User, escalation_id: int, now: dt.datetime | None = None) -> Escalation:
    """First clinician wins; a repeat by the owner is harmless; anyone else gets `conflict`
    naming the owner."""
    now = now or timezone.now()
    with transaction.atomic():
        escalation = access_escalation_for_staff(user=user, escalation_id=escalation_id, lock=True)
        if escalation.state != EscalationState.OPEN:
            if escalation.owner_id == user.id:
                return escalation
            owner = escalation.owner.public_name if escalation.owner else "someone"
            raise Conflict(f"Already {escalation.state} by {owner}.")
        escalation.state = EscalationState.ACKNOWLEDGED
        escalation.owner = user
        escalation.acknowledged_at = now
        escalation.delivered_at = escalation.delivered_at or now
        escalation.next_step_at = None
        escalation.save(update_fields=["state", "owner", "acknowledged_at", "delivered_at", "next_step_at"])
        audit(escalation, "acknowledged", actor=user,
              seconds_to_ack=round((now - escalation.created_at).total_seconds(), 3))
        _push_on_commit(escalation, "escalation.acknowledged")
    return escalation


def escalation_mark_received(*, user: User, escalation_ids: list[int], now: dt.datetime | None = None) -> int:
    """A clinician's client confirms it has shown these escalations. Idempotent; the
    first receipt stops redelivery and is audited. Returns how many were newly marked."""
    require_escalation_role(user)
    now = now or timezone.now()
    ids = [i for i in escalation_ids if isinstance(i, int) and not isinstance(i, bool)][:500]
    with transaction.atomic():
        fresh = list(
            Escalation.objects.select_for_update(skip_locked=True).filter(pk__in=ids, delivered_at__isnull=True)
        )
        for escalation in fresh:
            escalation.delivered_at = now
            escalation.save(update_fields=["delivered_at"])
            audit(escalation, "delivered", actor=user)
    return len(fresh)


def escalation_note_add(*, user: User, escalation_id: int, body: str) -> EscalationAudit:
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("A note needs some text.")
    with transaction.atomic():
        escalation = access_escalation_for_staff(user=user, escalation_id=escalation_id, lock=True)
        note = EscalationAudit.objects.create(escalation=escalation, actor=user, action="note", detail={"body": body[:4000]})
        _push_on_commit(escalation, "escalation.note", note={"id": note.id, "author": user.handle, "body": note.detail["body"]})
    return note


def escalation_handover(*, user: User, escalation_id: int, to_user_id: int, note: str = "") -> Escalation:
    with transaction.atomic():
        escalation = access_escalation_for_staff(user=user, escalation_id=escalation_id, lock=True)
        _require_owner_or_supervisor(escalation, user)
        target = User.objects.filter(pk=to_user_id, is_active=True, role__in=ESCALATION_ROLES).first()
        if target is None:
            raise ValidationFailed("Hand over to an active clinician or supervisor.")
        previous = escalation.owner
        escalation.owner = target
        escalation.save(update_fields=["owner"])
        audit(escalation, "handed_over", actor=user, from_user=previous.id if previous else None, to_user=target.id, note=note[:2000])
        _push_on_commit(escalation, "escalation.handed_over", note=note[:2000], previous_owner=previous.handle if previous else None)
    return escalation


def escalation_resolve(*, user: User, escalation_id: int, outcome: str, note: str = "", now: dt.datetime | None = None) -> Escalation:
    now = now or timezone.now()
    if outcome not in Outcome.values:
        raise ValidationFailed(f"outcome is required: one of {', '.join(Outcome.values)}")
    with transaction.atomic():
        escalation = access_escalation_for_staff(user=user, escalation_id=escalation_id, lock=True)
        if escalation.state == EscalationState.RESOLVED:
            raise Conflict("Already resolved.")
        if escalation.state == EscalationState.OPEN:
            raise Conflict("Acknowledge the escalation before resolving it.")
        _require_owner_or_supervisor(escalation, user)
        escalation.state = EscalationState.RESOLVED
        escalation.resolved_at = now
        escalation.outcome = outcome
        escalation.outcome_note = note[:4000]
        escalation.save(update_fields=["state", "resolved_at", "outcome", "outcome_note"])
        audit(escalation, "resolved", actor=user, outcome=outcome, note=note[:4000])
        _push_on_commit(escalation, "escalation.resolved")
    return escalation


def escalation_raise(*, escalation: Escalation, level: str, categories: list[str], evidence: list[dict]) -> bool:
    """The model layer found more risk than the inline layer: raise, never lower. Runs
    inside the caller's transaction; returns True if the level went up."""
    from .engine import level_rank

    if level_rank(level) <= level_rank(escalation.level):
        return False
    old = escalation.level
    escalation.level = level
    escalation.categories = sorted(set(escalation.categories) | set(categories))
    escalation.evidence = escalation.evidence + [e for e in evidence if e not in escalation.evidence]
    fields = ["level", "categories", "evidence"]
    if escalation.state == EscalationState.OPEN:
        deadline = ack_deadline_for(level, timezone.now())
        if deadline < escalation.ack_deadline:
            escalation.ack_deadline = deadline
            escalation.next_step_at = min(escalation.next_step_at or deadline, deadline)
            fields += ["ack_deadline", "next_step_at"]
    escalation.save(update_fields=fields)
    audit(escalation, "level_raised", from_level=old, to_level=level, by="model")
    _push_on_commit(escalation, "escalation.updated")
    return True


def escalation_list_open(*, user: User) -> list[Escalation]:
    require_escalation_role(user)
    return list(
        Escalation.objects.select_related("young_person", "owner")
        .exclude(state=EscalationState.RESOLVED)
        # Unacknowledged first ("open" > "acknowledged"), imminent before high, oldest
        # first: if the list is ever capped, what is cut is already owned by someone.
        .order_by("-state", "-level", "created_at")[:1000]
    )


def escalation_record_view(*, user: User, escalation: Escalation) -> None:
    audit(escalation, "viewed", actor=user)


def _require_owner_or_supervisor(escalation: Escalation, user: User) -> None:
    if escalation.owner_id == user.id:
        return
    if user.role in (Role.SUPERVISOR, Role.ADMIN):
        return
    raise PermissionDenied("Only the clinician who owns this escalation (or a supervisor) can do that.")


def _push_on_commit(escalation: Escalation, event: str, **extra: Any) -> None:
    escalation_id = escalation.id

    def push() -> None:
        fresh = Escalation.objects.select_related("young_person", "owner").get(pk=escalation_id)
        realtime.send_now(state_groups(fresh), payload_state(fresh, event, **extra))

    transaction.on_commit(push)


def young_person_crisis_intro(*, at: dt.datetime | None = None) -> str:
    """The supportive first line a young person sees after a crisis message. Honest about
    cover: with no clinician on duty it points at 999 and the 24/7 lines first."""
    if nobody_on_duty(at=at):
        return (
            "Thank you for telling us. It sounds like things are really hard right now. "
            "Our clinical team is not on duty at the moment, so if you are in danger or have hurt "
            "yourself, please call 999 now. You can talk to someone any time, free:"
        )
    return (
        "Thank you for telling us. It sounds like things are really hard right now. "
        "A member of our clinical team has been told and will look at this straight away. "
        "If you are in danger now, call 999. You can also talk to someone any time, free:"
    )
