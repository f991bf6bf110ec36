"""One command per benchmark scenario (issue 7). Starts the real stack on loopback, runs
the scenario, writes a JSON result and PNG plots to bench/results/<stamp>-<scenario>/,
then cleans up (processes killed, database dropped).

    .venv/bin/python bench/run.py --scenario steady --sessions 250 --duration 60
    .venv/bin/python bench/run.py --scenario all          # compact full run (~15 min)
    .venv/bin/python bench/run.py --scenario ladder,floor,echo --rounds 3   # the ratio three times

Scenarios: steady, ladder, crisis, forum, reconnect, triage, echo (the bare Channels echo
ladder), floor (the ladder against the cheapest persisted-and-triaged path, bench/floor_asgi.py),
all. By default the ASGI server runs on core 0 (taskset) and the load client,
private redis-server, Celery workers and beat on core 1; PostgreSQL (the machine's shared
server) is not pinned. --no-pin lets everything float (whole box).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LADDER_RATES = [10, 20, 30, 40, 60, 80, 100, 150, 200, 300, 400, 600, 800, 1000, 1400, 2000, 2800, 4000, 5600]


def _loops(value: str) -> str:
    from config.serve import EVENT_LOOPS

    if not value or any(v not in EVENT_LOOPS for v in value.split(",")):
        raise argparse.ArgumentTypeError("uvloop, asyncio, or a comma list of them")
    return value


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="steady",
                    help="steady, ladder, crisis, forum, reconnect, triage, echo, floor, all, or a comma list (echo,floor,ladder)")
    ap.add_argument("--sessions", type=int, default=250, help="concurrent sessions (2 sockets each)")
    ap.add_argument("--duration", type=float, default=60, help="seconds of load")
    ap.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    ap.add_argument("--asgi-procs", type=int, default=1)
    ap.add_argument("--event-loop", type=_loops, default="uvloop",
                    help="Daphne's event loop (config/serve.py; ASGI_EVENT_LOOP), for the product and the baselines: "
                         "uvloop or asyncio; a comma list gives one per ASGI process in turn (--asgi-procs 2 "
                         "--event-loop uvloop,asyncio: both on the ASGI core, CPU reported per process)")
    ap.add_argument("--layer", choices=["pubsub", "core"], default="pubsub",
                    help="the CHANNEL_LAYER setting: pubsub (product default, RedisPubSubChannelLayer) or core (RedisChannelLayer)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    ap.add_argument("--clinicians", type=int, default=10)
    ap.add_argument("--ladder-sessions", type=int, default=200)
    ap.add_argument("--step-s", type=float, default=10)
    ap.add_argument("--rates", default=",".join(map(str, LADDER_RATES)), help="ladder steps, msgs/s")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--client-loop", choices=["uvloop", "asyncio"], default="uvloop",
                    help="the load client's event loop: uvloop (default since the thirtieth pass: the client "
                         "shares core 1 with PostgreSQL and Redis, and on asyncio's own loop it took 12-20%% more "
                         "CPU a message) or asyncio's own, as the earlier passes measured (frames are parsed with orjson either way since "
                         "that pass)")
    ap.add_argument("--client-ws", choices=["picows", "websockets"], default="picows",
                    help="the load client's websocket library: picows (default since the thirtieth pass: frames "
                         "parsed in a callback and written at once, no task woken per frame) or websockets (a "
                         "reader and a writer task per socket), as the earlier passes measured")
    ap.add_argument("--client-gc", choices=["quiet", "default"], default="quiet",
                    help="the load client's collector during load: frozen and a 50,000 young-generation "
                         "threshold (quiet), or Python's defaults (bench/harness/clientgc.py)")
    ap.add_argument("--heads", choices=["all", "crisis"], default="all",
                    help="which chat messages begin with their id and scheduled time: all (the default, as every "
                         "pass measured) or only the crisis ones, which need it to be matched to their escalation "
                         "(the others are then plain filler text; bench/harness/loadgen.py body_for)")
    ap.add_argument("--profile", action="store_true",
                    help="py-spy record the ASGI processes during the load phase (collapsed stacks in the run folder)")
    ap.add_argument("--docs", action="store_true", help="also copy the PNGs to docs/benchmarks/")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the scenario list this many times in turn (ladder,floor,echo,ladder,floor,echo,...) "
                         "and report each round's knees and ratios and their medians: this machine type's speed "
                         "drifts within minutes, and a ratio from one round can catch one side on a slow stretch")
    ap.add_argument("--interleave", action="store_true",
                    help="run the round's ladders (ladder, floor, echo) side by side, their steps taken in turn "
                         "(the echo's two at a time), instead of one whole ladder after another: a slow stretch of "
                         "the machine then falls on all of them, not on one side of the ratio")
    return ap.parse_args()


LADDERS = {"ladder": None, "floor": "floor", "echo": "echo"}  # scenario -> its ladder's baseline


async def _one(ctx, name: str, out: dict, rates: list[float]) -> None:
    from bench.harness import scenarios as sc

    args = ctx.args
    if name == "steady":
        out[f"steady_{args.sessions}"] = await sc.chat_run(ctx, name=f"steady_{args.sessions}", sessions=args.sessions,
                                                           duration=args.duration)
    elif name.startswith("steady_"):
        n = int(name.split("_")[1])
        out[name] = await sc.chat_run(ctx, name=name, sessions=n, duration=args.duration)
    elif name == "crisis":
        out[name] = await sc.chat_run(ctx, name=name, sessions=args.sessions, duration=args.duration,
                                      crisis_p=0.02, clinicians=args.clinicians)
    elif name == "forum":
        cfg = {"at": 15, "burst_s": 10, "posts": 500, "watchers": 200, "authors": 50, "tail_s": 5}
        out[name] = await sc.chat_run(ctx, name=name, sessions=args.sessions, duration=max(args.duration, 45),
                                      crisis_p=0.02, clinicians=args.clinicians, forum=cfg)
    elif name == "reconnect":
        out[name] = await sc.chat_run(ctx, name=name, sessions=args.sessions, duration=max(args.duration, 60),
                                      crisis_p=0.02, clinicians=args.clinicians, storm={"at": 15, "window_s": 30})
    elif name == "ladder":
        out[name] = await sc.ladder(ctx, baseline=None, sessions=args.ladder_sessions, step_s=args.step_s, rates=rates)
    elif name in sc.BASELINES:
        out[f"ladder_{name}"] = await sc.ladder(ctx, baseline=name, sessions=args.ladder_sessions, step_s=args.step_s,
                                                rates=rates)
    elif name == "triage":
        out[name] = sc.triage(ctx)
    elif "," in name:  # --interleave: these ladders side by side (_run_round)
        out.update(await sc.ladders_interleaved(ctx, baselines=[LADDERS[n] for n in name.split(",")],
                                                sessions=args.ladder_sessions, step_s=args.step_s, rates=rates))


async def run_scenarios(ctx, names: list[str]) -> dict:
    """The scenarios' results (the first round's, under their own names) and, with --rounds,
    `rounds` (each round's knees and ratios) and `rounds_median`."""
    rounds = []
    for i in range(max(1, ctx.args.rounds)):
        if ctx.args.rounds > 1:
            print(f"=== round {i + 1} of {ctx.args.rounds}", flush=True)
        ctx.round_suffix = f"-round{i + 1}" if i else ""
        rounds.append(await _run_round(ctx, names))
    out = rounds[0]
    if len(rounds) > 1:
        out["rounds"] = [_knees_and_ratios(r) for r in rounds]
        out["rounds_median"] = {key: round(statistics.median(vals), 3) for key in dict.fromkeys(k for r in out["rounds"] for k in r)
                                if (vals := [r[key] for r in out["rounds"] if isinstance(r.get(key), int | float)])}
    return out


def _knees(out: dict) -> dict:
    return {k: (out.get(k) or {}).get("knee_msgs_per_s") for k in ("ladder", "ladder_floor", "ladder_echo")}


def _knees_and_ratios(out: dict) -> dict:
    return {**_knees(out), **{k: v for k, v in out.items() if k.endswith(("_ratio", "_ratio_bound"))}}


async def _run_round(ctx, names: list[str]) -> dict:
    args = ctx.args
    rates = [float(r) for r in args.rates.split(",")]
    out = {}
    interleaved = [n for n in names if n in LADDERS] if args.interleave else []
    if len(interleaved) > 1:  # one unit, "ladder,floor,echo", where the first of them stood in the list
        names = [",".join(interleaved) if n == interleaved[0] else n for n in names if n not in interleaved[1:]]
    for name in names:
        print(f"== {name}", flush=True)
        t = time.monotonic()
        before = set(out)
        try:
            await _one(ctx, name, out, rates)
        except Exception as exc:  # one failed scenario is reported, the others still run
            import traceback

            traceback.print_exc()
            out[name] = {"scenario": name, "error": f"{type(exc).__name__}: {exc}"}
            ctx.stack.stop_asgi()
        print(f"   {name} done in {time.monotonic() - t:.0f}s", flush=True)
        ctx.partial(out)  # a run cut short still leaves every finished scenario on disk
        print(summary({"results": {k: v for k, v in out.items() if k not in before}}), flush=True)
    knees = _knees(out)
    for a, b in (("ladder", "ladder_echo"), ("ladder", "ladder_floor"), ("ladder_floor", "ladder_echo")):
        if knees[a] and knees[b]:
            key = f"{a}_vs_{b[len('ladder_'):]}_ratio"
            out[key] = round(knees[a] / knees[b], 3)
            # A ladder whose every step passed gives only a lower bound on its knee.
            bound = {(True, False): "upper", (False, True): "lower", (False, False): "unknown"}.get(
                (_reached(out[a]), _reached(out[b])))
            if bound:
                out[f"{key}_bound"] = bound
    return out


def _reached(ladder: dict) -> bool:
    return ladder.get("knee_reached", True)  # results from before the key: assumed reached


def main() -> None:
    args = parse()
    from bench.harness.procstat import loadavg, machine, neighbour_probe, speed_probe
    from bench.harness.stack import Layout, Stack

    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.out) / f"{stamp}-{args.scenario}"
    run_dir.mkdir(parents=True, exist_ok=True)
    layout = Layout(pin=not args.no_pin)
    stack = Stack(run_dir=run_dir, layout=layout, layer=args.layer)
    # This process is the load client (and creates the data): same settings and database.
    stack.env["ASGI_EVENT_LOOP"] = args.event_loop
    os.environ.update(stack.env)
    os.environ["TRIAGE_MODEL_DISPATCH"] = "0"  # setup data needs no model pass; the servers dispatch it
    if layout.client:
        os.sched_setaffinity(0, {int(layout.client)})
    import django

    if args.scenario == "all":
        names = ["triage", "steady_250", "steady_500", "steady_1000", "crisis", "forum", "reconnect", "echo", "floor",
                 "ladder"]
        if args.duration == 60:
            args.duration = 30
        if args.step_s == 10:
            args.step_s = 8
    else:
        names = args.scenario.split(",")
        unknown = set(names) - {"steady", "ladder", "crisis", "forum", "reconnect", "triage", "echo", "floor"}
        if unknown:
            sys.exit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    speed = speed_probe(layout.asgi)
    result = {"machine": {**machine(), "speed_probe_ms_before": speed,
                          "neighbour_probe_before": neighbour_probe(layout.asgi, layout.client, alone=speed)}, "args": vars(args), "layout": layout.describe(), "started": stamp,
              "settings_changed_for_load": {"WS_RATE_PER_S": stack.env["WS_RATE_PER_S"], "WS_RATE_BURST": stack.env["WS_RATE_BURST"],
                                            "CHAT_MESSAGE_RATE": "1000000 (bench/harness/settings.py)",
                                            "THROTTLE_USER": stack.env["THROTTLE_USER"]}}
    try:
        stack.start_backend(celery=names != ["triage"])
        django.setup()
        from django.conf import settings

        # Setup data is created before any socket exists: its pushes would reach nobody.
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        from bench.harness.scenarios import Ctx

        ctx = Ctx(stack, args, run_dir, stamp)
        run = asyncio.run
        if args.client_loop == "uvloop":
            import uvloop

            run = uvloop.run
        result["results"] = run(run_scenarios(ctx, names))
    finally:
        stack.stop()
        result["machine"]["loadavg_after"] = loadavg()
        speed = result["machine"]["speed_probe_ms_after"] = speed_probe(layout.asgi)
        result["machine"]["neighbour_probe_after"] = neighbour_probe(layout.asgi, layout.client, alone=speed)
        path = run_dir / "result.json"
        path.write_text(json.dumps(result, indent=1, default=str))
        print(f"wrote {path}")
        if args.docs:
            dest = ROOT / "docs" / "benchmarks"
            dest.mkdir(parents=True, exist_ok=True)
            for png in run_dir.glob("*.png"):
                shutil.copy(png, dest / png.name)
    print(summary(result))


def summary(result: dict) -> str:
    from bench.harness.procstat import neighbour_text

    lines = []
    m = result.get("machine")
    if m:  # absent from the progress lines printed after each scenario: the probe runs at the end
        lines.append(f"machine: {m['cpu_model']} x{m['cores']}, load {m['loadavg_before']}; speed probe "
                     f"{m.get('speed_probe_ms_before')} ms before, {m.get('speed_probe_ms_after')} after (lower is faster)")
        lines.append(f"neighbour probe: {neighbour_text(m)}")
    for name, r in (result.get("results") or {}).items():
        if name == "rounds":
            lines += [f"round {i + 1}: {json.dumps(each)}" for i, each in enumerate(r)]
            continue
        if not isinstance(r, dict):
            lines.append(f"{name}: {r}")
            continue
        if "chat" in r:
            c = r["chat"]
            d = c["delivery_ms"]
            lines.append(f"{name}: {r['sockets']} sockets, {c['sent']} sent {c['delivered']} delivered {c['errored']} errored "
                         f"{c['lost']} lost; delivery p50 {d.get('p50')} p99 {d.get('p99')} max {d.get('max')} ms; "
                         f"RSS/socket {r['asgi_rss']['per_socket_kb']} KB; asgi {r.get('asgi_cpu_ms_per_message')} ms CPU/msg; "
                         f"model worker {r.get('model_worker_cpu_ms_per_assessment')} ms CPU/assessment; client send lag "
                         f"p99 {c.get('client_send_lag_ms', {}).get('p99')} ms, client GC longest "
                         f"{(r.get('client_gc') or {}).get('max_ms')} ms")
            if "crisis" in c:
                k = c["crisis"]
                lines.append(f"   crisis: {k['sent']} sent, escalation.new {k['escalation_delivered']} "
                             f"p99 {k['send_to_escalation_new_ms'].get('p99')} ms; banner {k['banner_delivered']} "
                             f"p99 {k['send_to_banner_ms'].get('p99')} ms")
            if "forum" in r:
                f = r["forum"]
                lines.append(f"   forum: {f['posts_201']}/{f['posts_sent']} posts, frames {f['forum_post_frames_received']}/"
                             f"{f['forum_post_frames_expected']}, every-watcher p99 {f['post_to_every_watcher_ms'].get('p99')} ms")
                for ph, s in r["chat_by_phase"].items():
                    lines.append(f"   chat {ph}: p50 {s['delivery_ms'].get('p50')} p99 {s['delivery_ms'].get('p99')} ms, lost {s['lost']}"
                                 + (f", crisis p99 {s['crisis']['send_to_escalation_new_ms'].get('p99')} ms" if "crisis" in s else ""))
            if "storm" in r:
                lines.append(f"   storm: {r['storm']}")
        elif "steps" in r:
            lines.append(f"{name}: knee {r['knee_msgs_per_s']} msg/s ({r['knee_msgs_per_s_per_core']} per core)"
                         + ("" if _reached(r) else " — NOT reached: every step passed, the knee is higher"))
        elif name == "triage":
            lines.append(f"triage: {json.dumps({k: v for k, v in r.items() if k.endswith('per_s')})}")
        else:
            lines.append(f"{name}: {r}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
