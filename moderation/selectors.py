"""Reads for the moderation team: the ordered queue and supervisor metrics."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone

from .models import ACTIVE_ITEM_STATES, Appeal, AppealState, ItemState, Queue, QueueItem


def item_list(*, queue: str | None = None, state: str | None = None) -> QuerySet[QueueItem]:
    """Active items by default, ordered risk first, then oldest first."""
    qs = QueueItem.objects.select_related("post__thread__board", "post__author")
    if queue:
        qs = qs.filter(queue=queue)
    if state:
        qs = qs.filter(state=state)
    else:
        qs = qs.filter(state__in=ACTIVE_ITEM_STATES)
    return qs.order_by("-risk_rank", "created_at", "id")


def appeal_list(*, state: str | None = AppealState.PENDING) -> QuerySet[Appeal]:
    qs = Appeal.objects.select_related("sanction").order_by("created_at")
    return qs.filter(state=state) if state else qs


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return round(sorted_values[index], 3)


def queue_metrics(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Queue lengths, time to decision (p50/p90) over MODERATION_METRICS_WINDOW_H hours,
    and active items older than MODERATION_TARGET_S[queue] seconds."""
    now = now or timezone.now()
    window = dt.timedelta(hours=float(getattr(settings, "MODERATION_METRICS_WINDOW_H", 24)))
    targets = {"care": 900, "sanction": 3600, **getattr(settings, "MODERATION_TARGET_S", {})}
    out: dict[str, Any] = {"generated_at": now.isoformat(), "window_hours": window.total_seconds() / 3600, "queues": {}}
    counts = {
        (row["queue"], row["state"]): row["n"]
        for row in QueueItem.objects.filter(state__in=ACTIVE_ITEM_STATES).values("queue", "state").annotate(n=Count("id"))
    }
    for queue in Queue.values:
        decided = QueueItem.objects.filter(queue=queue, state=ItemState.DECIDED, decided_at__gte=now - window)
        durations = sorted((d - c).total_seconds() for c, d in decided.values_list("created_at", "decided_at"))
        target = float(targets.get(queue, 3600))
        past = QueueItem.objects.filter(
            queue=queue, state__in=ACTIVE_ITEM_STATES, created_at__lte=now - dt.timedelta(seconds=target)
        ).count()
        out["queues"][queue] = {
            "open": counts.get((queue, ItemState.OPEN), 0),
            "claimed": counts.get((queue, ItemState.CLAIMED), 0),
            "length": counts.get((queue, ItemState.OPEN), 0) + counts.get((queue, ItemState.CLAIMED), 0),
            "decided_in_window": len(durations),
            "time_to_decision_s": {"p50": _percentile(durations, 0.5), "p90": _percentile(durations, 0.9)},
            "target_s": target,
            "past_target": past,
        }
    out["appeals_pending"] = Appeal.objects.filter(state=AppealState.PENDING).count()
    return out
