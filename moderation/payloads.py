"""JSON for queue items, sanctions, appeals and watched words (REST and frames)."""

from __future__ import annotations

from typing import Any

from .models import Appeal, AuditEntry, QueueItem, Sanction, WatchedWord


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def item_summary(item: QueueItem) -> dict[str, Any]:
    """What the live feed carries: enough to reorder a queue, no post text."""
    return {
        "id": item.id,
        "queue": item.queue,
        "state": item.state,
        "version": item.version,
        "post_id": item.post_id,
        "risk_rank": item.risk_rank,
        "reasons": item.reasons,
        "report_count": item.report_count,
        "claimed_by": item.claimed_by_id,
        "claim_expires_at": _iso(item.claim_expires_at),
        "decision": item.decision or None,
        "created_at": _iso(item.created_at),
    }


def item_payload(item: QueueItem) -> dict[str, Any]:
    post = item.post
    return {
        **item_summary(item),
        "revision": item.revision,
        "scores": item.scores,
        "evidence": item.evidence,
        "pii": item.pii,
        "redaction_suggestion": item.redaction_suggestion or None,
        "decided_by": item.decided_by_id,
        "decided_at": _iso(item.decided_at),
        "post": {
            "id": post.id,
            "thread_id": post.thread_id,
            "board_id": post.thread.board_id,
            "author_id": post.author_id,
            "author": post.author.handle,
            "author_age_band": post.author.age_band,
            "body": post.body,
            "state": post.state,
            "revision": post.revision,
            "deleted": post.deleted_at is not None,
            "created_at": _iso(post.created_at),
        },
    }


def sanction_payload(sanction: Sanction) -> dict[str, Any]:
    appeal = getattr(sanction, "appeal", None) if hasattr(sanction, "appeal") else None
    return {
        "id": sanction.id,
        "user_id": sanction.user_id,
        "kind": sanction.kind,
        "reason": sanction.reason,
        "message": sanction.message,
        "item_id": sanction.item_id,
        "starts_at": _iso(sanction.starts_at),
        "ends_at": _iso(sanction.ends_at),
        "revoked_at": _iso(sanction.revoked_at),
        "appeal": appeal_payload(appeal) if appeal else None,
    }


def appeal_payload(appeal: Appeal) -> dict[str, Any]:
    return {
        "id": appeal.id,
        "sanction_id": appeal.sanction_id,
        "user_id": appeal.user_id,
        "text": appeal.text,
        "state": appeal.state,
        "note": appeal.note,
        "decided_at": _iso(appeal.decided_at),
        "created_at": _iso(appeal.created_at),
    }


def watched_word_payload(word: WatchedWord) -> dict[str, Any]:
    return {
        "id": word.id,
        "phrase": word.phrase,
        "action": word.action,
        "replacement": word.replacement,
        "is_active": word.is_active,
        "updated_at": _iso(word.updated_at),
    }


def audit_payload(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "item_id": entry.item_id,
        "post_id": entry.post_id,
        "sanction_id": entry.sanction_id,
        "appeal_id": entry.appeal_id,
        "detail": entry.detail,
        "created_at": _iso(entry.created_at),
    }
