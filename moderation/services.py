"""The moderation pipeline and moderator actions.

Flow (reliability.md): forums stores a post and calls `submission_open` in the same
transaction; the check is dispatched to Celery after commit (`moderation.assess_post`)
and a beat sweeper re-dispatches checks not done after a few seconds. `post_assess`
runs the triage engine, records the assessment (triage opens escalations), applies the
board policy and creates or merges the queue item. Every step is idempotent: the
check row's state is the guard, and one active item per (post, queue) is a constraint.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from config.exceptions import NotFound, ValidationFailed
from forums import services as forum_services
from forums.models import ModerationPolicy, Post, PostState

from . import events
from .exceptions import (
    AccountSuspended,
    AppealClosed,
    AppealExists,
    ClaimRequired,
    ItemClaimed,
    ItemClosed,
    PostBlocked,
    PostingMuted,
    VersionConflict,
)
from .models import (
    ACTIVE_ITEM_STATES,
    Appeal,
    AppealState,
    AuditEntry,
    CheckState,
    ItemState,
    PostCheck,
    Queue,
    QueueItem,
    Report,
    ReportReason,
    Sanction,
    SanctionKind,
    WatchAction,
    WatchedWord,
)

logger = logging.getLogger(__name__)

LEVELS = ("none", "low", "moderate", "high", "imminent")
ESCALATE_LEVELS = ("high", "imminent")
DECISIONS = ("approve", "approve_edited", "reject", "escalate", "warn", "mute", "suspend")
SANCTION_FOR_DECISION = {"warn": SanctionKind.WARNING, "mute": SanctionKind.MUTE, "suspend": SanctionKind.SUSPENSION}
REJECT_REASONS = {
    "bullying": "Your post was not published because it could hurt someone. Everyone here deserves kindness.",
    "hate": "Your post was not published because it could be hurtful to a group of people.",
    "spam": "Your post was not published because it looks like advertising or spam.",
    "personal_details": "Your post was not published because it shares personal details. Keeping them private keeps you safe.",
    "unsafe_content": "Your post was not published because it could be upsetting or unsafe for others to read.",
    "off_topic": "Your post was not published because it doesn't fit this board. Try another board.",
    "other": "Your post was not published. Please read the community guidelines and try again.",
}
CARE_MESSAGE = (
    "Thank you for sharing this. It sounds like things are really hard right now. "
    "Your post is with our team, and you don't have to wait: you can talk to a counsellor now, "
    "or contact one of these services."
)


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def level_rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else 0


# --- watched words ----------------------------------------------------------------------
def _pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(phrase.strip()) + r"(?!\w)", re.IGNORECASE)


def watched_words_active() -> list[WatchedWord]:
    return list(WatchedWord.objects.filter(is_active=True).order_by("id"))


def watched_words_apply(*, text: str) -> str:
    """At submission: refuse `block` words, substitute `replace` words. Cheap, no I/O
    beyond one small query; `hold` and `flag` are applied by the pipeline."""
    for word in watched_words_active():
        pattern = _pattern(word.phrase)
        if word.action == WatchAction.BLOCK and pattern.search(text):
            raise PostBlocked()
        if word.action == WatchAction.REPLACE:
            text = pattern.sub(word.replacement or "***", text)
    return text


def watched_words_hits(*, text: str) -> list[dict[str, Any]]:
    hits = []
    for word in watched_words_active():
        if word.action not in (WatchAction.HOLD, WatchAction.FLAG):
            continue
        for match in _pattern(word.phrase).finditer(text):
            hits.append({"start": match.start(), "end": match.end(), "text": match.group(0), "action": word.action, "word_id": word.id})
    return hits


def watched_word_create(*, actor: User, phrase: str, action: str, replacement: str = "") -> WatchedWord:
    phrase = (phrase or "").strip()
    if not phrase or len(phrase) > 100:
        raise ValidationFailed({"phrase": ["Give a word or phrase of up to 100 characters."]})
    if action not in WatchAction.values:
        raise ValidationFailed({"action": [f"One of {', '.join(WatchAction.values)}."]})
    with transaction.atomic():
        if WatchedWord.objects.filter(is_active=True, phrase__iexact=phrase).exists():
            raise ValidationFailed({"phrase": ["That word is already watched."]})
        word = WatchedWord.objects.create(phrase=phrase, action=action, replacement=replacement, created_by=actor)
        AuditEntry.objects.create(actor=actor, action="watched_word.created", detail={"id": word.id, "phrase": phrase, "action": action})
    return word


def watched_word_update(*, actor: User, word: WatchedWord, action: str | None = None, replacement: str | None = None, is_active: bool | None = None) -> WatchedWord:
    if action is not None and action not in WatchAction.values:
        raise ValidationFailed({"action": [f"One of {', '.join(WatchAction.values)}."]})
    with transaction.atomic():
        word = WatchedWord.objects.select_for_update().get(pk=word.pk)
        before = {"action": word.action, "replacement": word.replacement, "is_active": word.is_active}
        if action is not None:
            word.action = action
        if replacement is not None:
            word.replacement = replacement
        if is_active is not None:
            word.is_active = is_active
        word.save()
        after = {"action": word.action, "replacement": word.replacement, "is_active": word.is_active}
        AuditEntry.objects.create(actor=actor, action="watched_word.updated", detail={"id": word.id, "before": before, "after": after})
    return word


# --- sanctions that block posting -------------------------------------------------------------
def active_sanction(*, user: User) -> Sanction | None:
    now = timezone.now()
    return (
        Sanction.objects.filter(user=user, revoked_at=None, starts_at__lte=now, kind__in=[SanctionKind.MUTE, SanctionKind.SUSPENSION])
        .exclude(ends_at__lte=now)
        .order_by("-kind", "-id")  # suspension sorts before mute
        .first()
    )


def posting_check(*, user: User) -> None:
    """Raise if a sanction stops this user posting or reacting now."""
    sanction = active_sanction(user=user)
    if sanction is None:
        return
    until = sanction.ends_at.isoformat() if sanction.ends_at else None
    if sanction.kind == SanctionKind.SUSPENSION:
        raise AccountSuspended({"message": AccountSuspended.default_detail, "sanction_id": sanction.id, "until": until})
    raise PostingMuted({"message": PostingMuted.default_detail, "sanction_id": sanction.id, "until": until})


# --- submission and dispatch ----------------------------------------------------------------
def submission_open(*, post: Post) -> PostCheck:
    """Write the outbox row for the post's current revision (inside the caller's
    transaction) and dispatch after commit. Older pending revisions are superseded,
    and active sanction-queue items about the old text are closed: the new text gets
    its own assessment. Care items stay open: what was written still matters."""
    PostCheck.objects.filter(post=post, state=CheckState.PENDING).update(state=CheckState.SUPERSEDED, done_at=timezone.now())
    if post.revision > 1:
        for item in QueueItem.objects.filter(post=post, queue=Queue.SANCTION, state__in=ACTIVE_ITEM_STATES):
            _item_close(item, reason="edited")
    check = PostCheck.objects.create(post=post, revision=post.revision)
    transaction.on_commit(lambda: check_dispatch(check_id=check.id, post_id=post.id))
    return check


def check_dispatch(*, check_id: int, post_id: int) -> None:
    """Hand a check to Celery. A broker failure is logged, not raised: the row is the
    record and the sweeper will try again."""
    from .tasks import assess_post

    PostCheck.objects.filter(pk=check_id).update(dispatched_at=timezone.now(), attempts=F("attempts") + 1)
    try:
        assess_post.delay(post_id)
    except Exception:
        logger.warning("moderation dispatch failed for check %s; the sweeper will retry", check_id, exc_info=True)


def checks_sweep(*, older_than_s: float | None = None, limit: int = 200) -> int:
    """Re-dispatch pending checks whose dispatch is older than `older_than_s` (or never
    happened). Rows are locked with SKIP LOCKED so two sweepers never double up; after
    MODERATION_MAX_ATTEMPTS a check is routed to a person without the model layer."""
    older_than_s = older_than_s if older_than_s is not None else float(_setting("MODERATION_SWEEP_AFTER_S", 5))
    max_attempts = int(_setting("MODERATION_MAX_ATTEMPTS", 5))
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_s)
    redispatch: list[tuple[int, int]] = []
    give_up: list[int] = []
    with transaction.atomic():
        rows = list(
            PostCheck.objects.select_for_update(skip_locked=True)
            .filter(state=CheckState.PENDING, created_at__lte=cutoff)
            .exclude(dispatched_at__gt=cutoff)
            .order_by("id")[:limit]
        )
        for check in rows:
            if check.attempts >= max_attempts:
                give_up.append(check.post_id)
            else:
                redispatch.append((check.id, check.post_id))
    for check_id, post_id in redispatch:
        check_dispatch(check_id=check_id, post_id=post_id)
    for post_id in give_up:
        try:
            post_assess(post_id=post_id, degraded_reason="pipeline_failed")
        except Exception:
            logger.exception("routing post %s to a person failed", post_id)
    return len(redispatch) + len(give_up)


# --- the pipeline -----------------------------------------------------------------------------
def _assess(text: str, degraded_reason: str | None):
    from triage import engine

    if degraded_reason:
        # Inline only, marked as needing a person: failure is never "no risk".
        return engine.degrade(engine.assess_inline(text), degraded_reason)
    return engine.assess_full([text])[0]


def post_assess(*, post_id: int, degraded_reason: str | None = None) -> str:
    """Assess the post's pending revision and route it. Idempotent: returns "noop" when
    there is nothing pending. The engine runs outside the transaction (it may be slow);
    the routing transaction re-checks the guard under a row lock."""
    check = PostCheck.objects.filter(post_id=post_id, state=CheckState.PENDING).order_by("-revision").first()
    if check is None:
        return "noop"
    text = Post.objects.values_list("body", flat=True).get(pk=post_id)
    result = _assess(text, degraded_reason)
    hits = watched_words_hits(text=text)
    with transaction.atomic():
        check = PostCheck.objects.select_for_update().filter(pk=check.pk).first()
        if check is None or check.state != CheckState.PENDING:
            return "noop"
        post = Post.objects.select_for_update(of=("self",)).select_related("thread__board", "author").get(pk=post_id)
        if post.revision != check.revision or post.body != text:
            # An edit landed meanwhile; its own check will assess it.
            check.state = CheckState.SUPERSEDED
            check.done_at = timezone.now()
            check.save(update_fields=["state", "done_at"])
            return "superseded"
        outcome = _route(post=post, result=result, hits=hits)
        check.state = CheckState.DONE
        check.done_at = timezone.now()
        check.result = result.to_dict()
        check.outcome = outcome
        check.save(update_fields=["state", "done_at", "result", "outcome"])
    return outcome


def _route(*, post: Post, result: Any, hits: list[dict[str, Any]]) -> str:
    from triage import pii as triage_pii
    from triage.services import assessment_record, escalation_open

    assessment = assessment_record(
        source_type="forum_post",
        source_id=post.id,
        author_id=post.author_id,
        text=post.body,
        thread_id=post.thread_id,
        result=result,
    )
    if result.level in ESCALATE_LEVELS or result.action == "escalate":
        # assessment_record opens it for a first assessment; an edit that turns risky
        # reuses the post's assessment row (triage keeps one per source).
        escalation_open(assessment=assessment, excerpt=post.body, raised_by_model=False)

    policy = post.thread.board.policy
    rank = level_rank(result.level)
    care_min = level_rank(_setting("MODERATION_CARE_MIN_LEVEL", "low"))
    toxicity = dict(result.toxicity or {})
    tox_threshold = float(_setting("MODERATION_TOXICITY_THRESHOLD", 0.8))
    toxic_keys = sorted(k for k, v in toxicity.items() if v >= tox_threshold)
    pii = list(result.pii or [])
    suggestion = triage_pii.redact(post.body, pii) if pii else ""
    scores = {"risk_level": result.level, "risk_score": result.score, "toxicity": toxicity or None, "action": result.action}
    evidence = list(result.evidence) + [{**h, "rule": "watched_word"} for h in hits]

    if rank >= care_min and result.categories:
        # Risk overrides toxicity: care queue only, held, never shown publicly.
        forum_services.post_hold(post=post)
        reasons = [f"risk:{c}" for c in result.categories]
        if pii:
            reasons.append("personal_details")
        _item_upsert(post=post, queue=Queue.CARE, reasons=reasons, risk_rank=rank, scores=scores, evidence=evidence, pii=pii, suggestion=suggestion)
        _care_offer(post=post)
        return "care"

    reasons = [f"toxicity:{k}" for k in toxic_keys]
    reasons += sorted({f"watched_word:{h['action']}" for h in hits})
    if pii:
        reasons.append("personal_details")
    if result.model_failed:
        reasons.append("not_fully_checked")
    if result.action == "review" and not reasons:
        reasons.append("triage_review")
    force_hold = any(h["action"] == WatchAction.HOLD for h in hits)

    if reasons:
        if policy != ModerationPolicy.POST or force_hold:
            forum_services.post_hold(post=post)
        _item_upsert(post=post, queue=Queue.SANCTION, reasons=reasons, risk_rank=rank, scores=scores, evidence=evidence, pii=pii, suggestion=suggestion)
        return "held" if post.state == PostState.HELD else "flagged"
    if policy == ModerationPolicy.PRE:
        _item_upsert(post=post, queue=Queue.SANCTION, reasons=["pre_moderation"], risk_rank=rank, scores=scores, evidence=evidence, pii=[], suggestion="")
        return "held"
    if post.deleted_at is None:
        forum_services.post_publish(post=post)
    return "published"


def _care_offer(*, post: Post) -> None:
    forum_services.notification_create(
        user_id=post.author_id,
        kind="care_offer",
        data={
            "post_id": post.id,
            "thread_id": post.thread_id,
            "message": CARE_MESSAGE,
            "resources": list(getattr(settings, "CRISIS_RESOURCES", [])),
            "action": "session.request",
            "offer": {"action": "session.request", "label": "Talk to a counsellor now"},
        },
    )


# --- queue items --------------------------------------------------------------------------------
def _item_upsert(*, post: Post, queue: str, reasons: list[str], risk_rank: int, scores: dict, evidence: list, pii: list, suggestion: str, report: bool = False) -> QueueItem:
    """Create the active item for (post, queue) or merge into it (one active item per
    post and queue is a database constraint, so concurrent reports cannot fork it)."""
    for _ in range(2):
        item = QueueItem.objects.select_for_update().filter(post=post, queue=queue, state__in=ACTIVE_ITEM_STATES).first()
        if item is not None:
            item.reasons = sorted(set(item.reasons) | set(reasons))
            item.risk_rank = max(item.risk_rank, risk_rank)
            if scores:
                item.scores = scores
            if evidence:
                item.evidence = evidence
            if pii:
                item.pii, item.redaction_suggestion = pii, suggestion
            item.revision = post.revision
            item.report_count += 1 if report else 0  # noqa: E501
            item.version += 1
            item.save()
            events.item_event(item, "updated")
            return item
        try:
            with transaction.atomic():
                item = QueueItem.objects.create(
                    post=post, queue=queue, revision=post.revision, reasons=sorted(set(reasons)), risk_rank=risk_rank,
                    scores=scores, evidence=evidence, pii=pii, redaction_suggestion=suggestion, report_count=1 if report else 0,
                )
        except IntegrityError:
            continue  # another worker created it first: merge into theirs
        events.item_event(item, "created")
        return item
    raise RuntimeError("could not create or merge a queue item")


def _item_close(item: QueueItem, *, reason: str) -> None:
    item.state = ItemState.CLOSED
    item.decision = reason
    item.claimed_by = None
    item.claim_expires_at = None
    item.version += 1
    item.save()
    AuditEntry.objects.create(action="item.closed", item=item, post_id=item.post_id, detail={"reason": reason})
    events.item_event(item, "closed")


def post_withdrawn(*, post: Post) -> None:
    """The author deleted the post: sanction review is moot, care review is not."""
    for item in QueueItem.objects.select_for_update().filter(post=post, queue=Queue.SANCTION, state__in=ACTIVE_ITEM_STATES):
        _item_close(item, reason="withdrawn")


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=int(_setting("MODERATION_CLAIM_LEASE_S", 300)))


def item_claim(*, moderator: User, item: QueueItem) -> QueueItem:
    """Claim (or renew a claim on) an item for MODERATION_CLAIM_LEASE_S seconds. An
    expired lease is free for anyone: nothing sticks to an absent moderator."""
    now = timezone.now()
    with transaction.atomic():
        item = QueueItem.objects.select_for_update().get(pk=item.pk)
        if item.state not in ACTIVE_ITEM_STATES:
            raise ItemClosed()
        held_by_other = item.claimed_by_id not in (None, moderator.id)
        if item.state == ItemState.CLAIMED and held_by_other and item.claim_expires_at and item.claim_expires_at > now:
            raise ItemClaimed({"message": ItemClaimed.default_detail, "claim_expires_at": item.claim_expires_at.isoformat()})
        item.state = ItemState.CLAIMED
        item.claimed_by = moderator
        item.claim_expires_at = now + _lease()
        item.version += 1
        item.save()
        AuditEntry.objects.create(actor=moderator, action="item.claimed", item=item, post_id=item.post_id, detail={"version": item.version})
        events.item_event(item, "claimed")
    return item


def item_release(*, moderator: User, item: QueueItem) -> QueueItem:
    with transaction.atomic():
        item = QueueItem.objects.select_for_update().get(pk=item.pk)
        if item.state != ItemState.CLAIMED or item.claimed_by_id != moderator.id:
            raise ClaimRequired()
        _release(item)
        AuditEntry.objects.create(actor=moderator, action="item.released", item=item, post_id=item.post_id, detail={})
    return item


def _release(item: QueueItem) -> None:
    item.state = ItemState.OPEN
    item.claimed_by = None
    item.claim_expires_at = None
    item.version += 1
    item.save()
    events.item_event(item, "released")


def claims_expire() -> int:
    """Periodic: reopen items whose lease ran out, so the live queue shows them free."""
    now = timezone.now()
    count = 0
    with transaction.atomic():
        for item in QueueItem.objects.select_for_update(skip_locked=True).filter(state=ItemState.CLAIMED, claim_expires_at__lte=now)[:500]:
            _release(item)
            AuditEntry.objects.create(action="item.claim_expired", item=item, post_id=item.post_id, detail={})
            count += 1
    return count


def item_decide(
    *,
    moderator: User,
    item: QueueItem,
    decision: str,
    version: int,
    reason: str = "",
    message: str = "",
    body: str | None = None,
    hours: int | None = None,
) -> QueueItem:
    """Decide a claimed item. Checks, in order: still active, the version the moderator
    saw (optimistic lock, so two moderators cannot both decide), their own live claim."""
    if decision not in DECISIONS:
        raise ValidationFailed({"decision": [f"One of {', '.join(DECISIONS)}."]})
    rejecting = decision == "reject" or decision in SANCTION_FOR_DECISION
    if rejecting and reason not in REJECT_REASONS:
        raise ValidationFailed({"reason": [f"One of {', '.join(REJECT_REASONS)}."]})
    now = timezone.now()
    with transaction.atomic():
        # Lock order everywhere: post, then item (the pipeline and reports do the same).
        post = Post.objects.select_for_update(of=("self",)).select_related("thread__board", "author").get(pk=item.post_id)
        item = QueueItem.objects.select_for_update().get(pk=item.pk)
        if item.state not in ACTIVE_ITEM_STATES:
            raise ItemClosed()
        if item.version != version:
            raise VersionConflict({"message": VersionConflict.default_detail, "version": item.version})
        if item.claimed_by_id != moderator.id or item.claim_expires_at is None or item.claim_expires_at <= now:
            raise ClaimRequired()
        detail: dict[str, Any] = {"decision": decision, "reason": reason, "version": version, "queue": item.queue}
        if decision == "approve":
            forum_services.post_publish(post=post)
            _notify_decision(post, "post_approved", "Your post is now live. Thank you for sharing.")
        elif decision == "approve_edited":
            new_body = (body if body is not None else item.redaction_suggestion) or post.body
            detail["edited"] = new_body != post.body
            forum_services.post_publish(post=post, body=new_body)
            _notify_decision(post, "post_approved", "Your post is now live. We removed some personal details to keep you safe.")
        elif decision == "escalate":
            _escalate(post)
        else:
            kind_message = (message or "").strip() or REJECT_REASONS[reason]
            forum_services.post_reject(post=post, reason=reason, message=kind_message)
            _notify_decision(post, "post_rejected", kind_message, reason=reason)
            if decision in SANCTION_FOR_DECISION:
                sanction = _sanction_issue(moderator=moderator, item=item, user=post.author, kind=SANCTION_FOR_DECISION[decision], reason=reason, message=kind_message, hours=hours)
                detail["sanction_id"] = sanction.id
        updated = QueueItem.objects.filter(pk=item.pk, version=version).update(
            state=ItemState.DECIDED, decision=decision, decided_by=moderator, decided_at=now,
            claimed_by=None, claim_expires_at=None, version=version + 1, updated_at=now,
        )
        if updated != 1:  # belt and braces where the row lock is a no-op (SQLite)
            raise VersionConflict()
        item.refresh_from_db()
        AuditEntry.objects.create(actor=moderator, action="item.decided", item=item, post=post, detail=detail)
        events.item_event(item, "decided")
    return item


def _notify_decision(post: Post, kind: str, message: str, reason: str = "") -> None:
    data = {"post_id": post.id, "thread_id": post.thread_id, "message": message}
    if reason:
        data["reason"] = reason
    forum_services.notification_create(user_id=post.author_id, kind=kind, data=data)


def _escalate(post: Post) -> None:
    """Hand to the duty clinician: triage's escalation row (idempotent per post)."""
    from triage.services import assessment_record, escalation_open

    assessment = assessment_record(source_type="forum_post", source_id=post.id, author_id=post.author_id, text=post.body, thread_id=post.thread_id)
    escalation_open(assessment=assessment, excerpt=post.body, raised_by_model=False)
    forum_services.post_hold(post=post)


def _sanction_issue(*, moderator: User, item: QueueItem | None, user: User, kind: str, reason: str, message: str, hours: int | None) -> Sanction:
    now = timezone.now()
    if kind == SanctionKind.MUTE:
        hours = hours or int(_setting("MODERATION_MUTE_HOURS", 24))
    ends_at = now + dt.timedelta(hours=hours) if hours and kind != SanctionKind.WARNING else None
    sanction = Sanction.objects.create(user=user, kind=kind, reason=reason, message=message, item=item, issued_by=moderator, starts_at=now, ends_at=ends_at)
    AuditEntry.objects.create(actor=moderator, action="sanction.issued", item=item, sanction=sanction, detail={"kind": kind, "hours": hours, "reason": reason})
    forum_services.notification_create(
        user_id=user.id,
        kind="sanction",
        data={"sanction_id": sanction.id, "sanction": kind, "message": message, "until": ends_at.isoformat() if ends_at else None, "can_appeal": True},
    )
    return sanction


# --- reports ------------------------------------------------------------------------------------
def report_file(*, reporter: User, post: Post, reason: str, note: str = "") -> Report:
    """A young person's report goes into the queue; repeated reports of one post merge
    into its active item. A reporter's second report of a post returns the first."""
    if reason not in ReportReason.values:
        raise ValidationFailed({"reason": [f"One of {', '.join(ReportReason.values)}."]})
    if len(note or "") > 1000:
        raise ValidationFailed({"note": ["Notes are limited to 1,000 characters."]})
    existing = Report.objects.filter(post=post, reporter=reporter).first()
    if existing is not None:
        return existing
    # "Worried about this person" is a care concern, not a rule breach.
    queue = Queue.CARE if reason == ReportReason.WORRIED else Queue.SANCTION
    try:
        with transaction.atomic():
            post = Post.objects.select_for_update(of=("self",)).select_related("thread__board", "author").get(pk=post.pk)
            item = _item_upsert(
                post=post, queue=queue, reasons=[f"report:{reason}"], risk_rank=2 if queue == Queue.CARE else 0,
                scores={}, evidence=[], pii=[], suggestion="", report=True,
            )
            report = Report.objects.create(post=post, reporter=reporter, reason=reason, note=note or "", item=item)
            threshold = int(_setting("MODERATION_REPORT_HOLD_THRESHOLD", 3))
            if queue == Queue.CARE or (threshold and item.report_count >= threshold):
                # Several people, or a worry for someone's safety: out of view until a moderator looks.
                forum_services.post_hold(post=post)
    except IntegrityError:
        return Report.objects.get(post=post, reporter=reporter)
    return report


# --- appeals ------------------------------------------------------------------------------------
def appeal_file(*, user: User, sanction: Sanction, text: str) -> Appeal:
    text = (text or "").strip()
    if not text or len(text) > 2000:
        raise ValidationFailed({"text": ["Tell us why, in up to 2,000 characters."]})
    if sanction.user_id != user.id:
        raise NotFound("No such sanction.")
    try:
        with transaction.atomic():
            appeal = Appeal.objects.create(sanction=sanction, user=user, text=text)
            AuditEntry.objects.create(actor=user, action="appeal.filed", sanction=sanction, appeal=appeal, detail={})
    except IntegrityError:
        raise AppealExists() from None
    return appeal


def appeal_decide(*, moderator: User, appeal: Appeal, outcome: str, note: str = "") -> Appeal:
    if outcome not in (AppealState.UPHELD, AppealState.OVERTURNED):
        raise ValidationFailed({"outcome": ["One of upheld, overturned."]})
    with transaction.atomic():
        appeal = Appeal.objects.select_for_update().select_related("sanction").get(pk=appeal.pk)
        if appeal.state != AppealState.PENDING:
            raise AppealClosed()
        appeal.state = outcome
        appeal.decided_by = moderator
        appeal.decided_at = timezone.now()
        appeal.note = note or ""
        appeal.save()
        if outcome == AppealState.OVERTURNED:
            Sanction.objects.filter(pk=appeal.sanction_id, revoked_at=None).update(revoked_at=timezone.now())
        AuditEntry.objects.create(actor=moderator, action="appeal.decided", sanction=appeal.sanction, appeal=appeal, detail={"outcome": outcome})
        forum_services.notification_create(
            user_id=appeal.user_id, kind="appeal_decided",
            data={"appeal_id": appeal.id, "sanction_id": appeal.sanction_id, "outcome": outcome, "message": note or ""},
        )
    return appeal
