"""Markdown tables from a bench/run.py result.json (used for docs/benchmarks.md).

    .venv/bin/python -m bench.harness.report bench/results/<stamp>-all/result.json
"""

from __future__ import annotations

import json
import sys

from bench.harness.procstat import neighbour_text


def _g(d: dict, *keys, default="–"):
    for k in keys:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return default
        d = d[k]
    return d


def render(result: dict) -> str:
    m = result["machine"]
    out = [f"Machine: {m['cpu_model']}, {m['cores']} cores, {m['mem_gib']} GiB, kernel {m['kernel']}; "
           f"load average before {m['loadavg_before']}, after {m.get('loadavg_after')}; speed probe "
           f"{m.get('speed_probe_ms_before', '–')} ms before, {m.get('speed_probe_ms_after', '–')} after; neighbour probe: "
           f"{neighbour_text(m)}.", ""]
    res = result.get("results", {})
    out += ["| scenario | sockets | offered msg/s | sent | delivered | errored | lost | delivery p50 / p99 / max ms | "
            "ack p99 ms | ASGI RSS KB/socket | ASGI CPU ms/msg | model worker CPU ms/assessment | ASGI core busy | load avg |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        if not isinstance(r, dict) or "chat" not in r:
            continue
        c = r["chat"]
        d = c["delivery_ms"]
        asgi_core = next((v["util"] for k, v in r["cpu"]["cores"].items() if k == "cpu0"), None)
        out.append(f"| {name} | {r['sockets']} | {r['offered_rate_msgs_per_s']} | {c['sent']} | {c['delivered']} | {c['errored']} | "
                   f"{c['lost']} | {_g(d, 'p50')} / {_g(d, 'p99')} / {_g(d, 'max')} | {_g(c, 'ack_ms', 'p99')} | "
                   f"{r['asgi_rss']['per_socket_kb']} | {r.get('asgi_cpu_ms_per_message', '–')} | "
                   f"{r.get('model_worker_cpu_ms_per_assessment', '–')} | "
                   f"{round(asgi_core * 100) if asgi_core is not None else '–'}% | {r['loadavg_at_start'][0]} |")
    out.append("")
    crisis_rows = []
    for name, r in res.items():
        if isinstance(r, dict) and "chat" in r and "crisis" in r["chat"]:
            k = r["chat"]["crisis"]
            crisis_rows.append(f"| {name} (all) | {r['clinician_sockets']} | {k['sent']} | {k['escalation_delivered']} | "
                               f"{_g(k, 'send_to_escalation_new_ms', 'p50')} / {_g(k, 'send_to_escalation_new_ms', 'p99')} | "
                               f"{k['banner_delivered']} | {_g(k, 'send_to_banner_ms', 'p50')} / {_g(k, 'send_to_banner_ms', 'p99')} |")
            for ph, s in (r.get("chat_by_phase") or {}).items():
                if "crisis" in s:
                    k = s["crisis"]
                    crisis_rows.append(f"| {name} ({ph}) | {r['clinician_sockets']} | {k['sent']} | {k['escalation_delivered']} | "
                                       f"{_g(k, 'send_to_escalation_new_ms', 'p50')} / {_g(k, 'send_to_escalation_new_ms', 'p99')} | "
                                       f"{k['banner_delivered']} | {_g(k, 'send_to_banner_ms', 'p50')} / {_g(k, 'send_to_banner_ms', 'p99')} |")
    if crisis_rows:
        out += ["| crisis run | clinician sockets | crisis msgs | escalation.new delivered | send→escalation.new p50 / p99 ms | "
                "banner delivered | send→counsellor banner p50 / p99 ms |", "|---|---|---|---|---|---|---|", *crisis_rows, ""]
    f = _g(res, "forum")
    if isinstance(f, dict):
        ff = f["forum"]
        out += ["Forum burst: "
                f"{ff['posts_201']}/{ff['posts_sent']} posts accepted (statuses {ff['statuses']}), HTTP p50/p99 "
                f"{_g(ff, 'post_http_ms', 'p50')}/{_g(ff, 'post_http_ms', 'p99')} ms; forum.post frames "
                f"{ff['forum_post_frames_received']}/{ff['forum_post_frames_expected']}; post→every watcher p50/p99 "
                f"{_g(ff, 'post_to_every_watcher_ms', 'p50')}/{_g(ff, 'post_to_every_watcher_ms', 'p99')} ms; "
                f"moderation checks {f['moderation']['post_checks']}.", "",
                "| chat during forum run | sent | lost | delivery p50 / p99 ms |", "|---|---|---|---|"]
        for ph, s in f["chat_by_phase"].items():
            out.append(f"| {ph} | {s['sent']} | {s['lost']} | {_g(s, 'delivery_ms', 'p50')} / {_g(s, 'delivery_ms', 'p99')} |")
        out.append("")
    st = _g(res, "reconnect", "storm")
    if isinstance(st, dict):
        out += [f"Reconnect storm: {st['reconnected']} sockets reconnected, reconnect+auth p50/p99 "
                f"{_g(st, 'reconnect_ms', 'p50')}/{_g(st, 'reconnect_ms', 'p99')} ms; sockets with seq gaps after resync: "
                f"{st['gaps']['sockets_with_gaps']} of {st['gaps']['sockets_checked']}; messages delivered via sync: "
                f"{res['reconnect']['chat']['delivered_via_sync']}; lost {res['reconnect']['chat']['lost']}.", ""]
    for name in ("ladder", "ladder_floor", "ladder_echo"):
        r = res.get(name)
        if not isinstance(r, dict) or "steps" not in r:
            continue
        unreached = " (not reached: every step passed, the knee is higher)" if not r.get("knee_reached", True) else ""
        out += [f"{name}: knee **{r['knee_msgs_per_s']} msg/s** ({r['knee_msgs_per_s_per_core']} per ASGI core){unreached}, "
                f"p99 limit {r['p99_limit_ms']} ms, {r['sockets']} sockets, {r['step_s']} s steps.", "",
                "| offered | delivered/s | p50 ms | p99 ms | lost | ASGI CPU ms/msg | core0 / core1 busy | client lag p99 ms |",
                "|---|---|---|---|---|---|---|---|"]
        for s in r["steps"]:
            cu = s["core_util"]
            out.append(f"| {s['offered']:g} | {s['delivered_per_s']} | {s['p50_ms']} | {s['p99_ms']} | {s['lost_or_late']} | "
                       f"{s.get('asgi_cpu_ms_per_msg', '–')} | {round(cu.get('cpu0', 0) * 100)}% / {round(cu.get('cpu1', 0) * 100)}% | "
                       f"{s['client_lag_p99_ms']} |")
        out.append("")
    for key, what in (("ladder_vs_echo_ratio", "Product knee / echo knee"), ("ladder_vs_floor_ratio", "Product knee / floor knee"),
                      ("ladder_floor_vs_echo_ratio", "Floor knee / echo knee")):
        if key in res:
            bound = {"upper": " (at most: the second knee was not reached)", "lower": " (at least: the first knee was not reached)",
                     "unknown": " (both knees unreached)"}.get(res.get(f"{key}_bound"), "")
            out += [f"{what}: **{res[key]}**{bound}.", ""]
    if res.get("rounds"):  # --rounds: the tables above are round 1's
        cols = list(dict.fromkeys(k for r in res["rounds"] for k in r))
        out += ["Rounds (the tables above are round 1's):", "", f"| round | {' | '.join(cols)} |",
                "|---" * (len(cols) + 1) + "|"]
        out += [f"| {i + 1} | {' | '.join(str(r.get(c)) for c in cols)} |" for i, r in enumerate(res["rounds"])]
        med = res.get("rounds_median", {})
        out += [f"| median | {' | '.join(str(med.get(c)) for c in cols)} |", ""]
    t = res.get("triage")
    if isinstance(t, dict):
        out += ["| triage, one pinned core, 1 torch thread | messages/s |", "|---|---|"]
        keys = ["inline"] + [f"model{r}_b{b}" for r in ("", "_torch") for b in (1, 8, 32)] + ["bert_b1", "bert_b32"]
        for k in keys:
            if f"{k}_msgs_per_s" in t:
                out.append(f"| {k} | {t[k + '_msgs_per_s']} |")
        for prefix in ("model", "model_torch"):
            if t.get(f"{prefix}_runtime"):
                precision = f", {t[prefix + '_precision']}" if t.get(f"{prefix}_precision") else ""
                out.append(f"| {prefix} runtime | {t[prefix + '_runtime']}{precision} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(json.load(open(sys.argv[1]))))
