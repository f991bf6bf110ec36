"""Percentiles, loss accounting and per-second time series from the generator's records."""

from __future__ import annotations

import math


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))]


def summary_ms(values_s: list[float]) -> dict:
    ms = [x * 1000 for x in values_s]
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50": round(pct(ms, 0.50), 2), "p90": round(pct(ms, 0.90), 2), "p99": round(pct(ms, 0.99), 2),
            "p999": round(pct(ms, 0.999), 2), "max": round(max(ms), 2), "mean": round(sum(ms) / len(ms), 2)}


def chat_summary(recs, *, t0: float | None = None, t1: float | None = None, tag: str | None = None) -> dict:
    sel = [r for r in recs if (t0 is None or r.sched >= t0) and (t1 is None or r.sched < t1) and (tag is None or r.tag == tag)]
    delivered = [r for r in sel if r.deliv is not None]
    errored = [r for r in sel if r.deliv is None and r.err is not None]
    sent = len(sel)
    out = {
        "sent": sent,
        "delivered": len(delivered),
        "errored": len(errored),
        "lost": sent - len(delivered) - len(errored),
        "error_codes": sorted({r.err for r in errored}),
        "delivered_via_sync": sum(1 for r in delivered if r.via == "sync"),
        "delivery_ms": summary_ms([r.deliv - r.sched for r in delivered]),
        "ack_ms": summary_ms([r.ack - r.sched for r in sel if r.ack is not None]),
        "client_send_lag_ms": summary_ms([r.sent - r.sched for r in sel if r.sent is not None]),
        "resends": sum(r.resends for r in sel),
    }
    if sent and sel:
        span = max(r.sched for r in sel) - min(r.sched for r in sel)
        out["offered_msgs_per_s"] = round(sent / span, 1) if span > 0 else None
    crisis = [r for r in sel if r.crisis]
    if crisis:
        out["crisis"] = {
            "sent": len(crisis),
            "escalation_delivered": sum(1 for r in crisis if r.esc_first is not None),
            "banner_delivered": sum(1 for r in crisis if r.banner is not None),
            "send_to_escalation_new_ms": summary_ms([r.esc_first - r.sched for r in crisis if r.esc_first is not None]),
            "send_to_banner_ms": summary_ms([r.banner - r.sched for r in crisis if r.banner is not None]),
        }
    return out


def series(recs, start: float, bucket: float = 1.0) -> list[dict]:
    """Per bucket (by scheduled time): offered, delivered, delivery p50/p99/max."""
    buckets: dict[int, list] = {}
    for r in recs:
        buckets.setdefault(int((r.sched - start) // bucket), []).append(r)
    out = []
    for k in sorted(buckets):
        rs = buckets[k]
        lat = [(r.deliv - r.sched) * 1000 for r in rs if r.deliv is not None]
        out.append({"t": round(k * bucket, 1), "offered": len(rs) / bucket, "delivered": len(lat) / bucket,
                    "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat) if lat else None,
                    "lost_or_err": len(rs) - len(lat)})
    return out
