"""Moderation websocket frames. The live feed itself needs no subscription: every
moderator, supervisor and admin socket is in its role group (moderation/events.py)."""

from __future__ import annotations

from typing import Any

from api.wsproto import ws_handler

from .payloads import item_summary
from .selectors import item_list, queue_metrics


@ws_handler("moderation.snapshot", roles=["moderator", "supervisor", "admin"])
def moderation_snapshot(user, frame: dict[str, Any]) -> dict[str, Any]:
    """The current active queue (top 100 per queue) to resync after (re)connecting."""
    items = {q: [item_summary(i) for i in item_list(queue=q)[:100]] for q in ("care", "sanction")}
    metrics = queue_metrics()
    lengths = {q: m["length"] for q, m in metrics["queues"].items()}
    return {"type": "moderation.snapshot", "items": items, "lengths": lengths, "ref": frame.get("ref")}
