"""The scenarios of issue 7. Each returns a JSON-able dict and writes its PNG."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from . import data, metrics, plot
from .clientgc import ClientGc
from .loadgen import Gen, PostRec, Sock, connect_all, http_post
from .procstat import CpuMeter, loadavg, rss_bytes, tree

SIDE_RATE = 1 / 15  # each side of a conversation sends a message every ~15 s (Poisson)


class Ctx:
    def __init__(self, stack, args, run_dir: Path, stamp: str) -> None:
        self.stack, self.args, self.run_dir, self.stamp = stack, args, run_dir, stamp
        self.prefix_n = 0
        self.client_gc = ClientGc()
        self.round_suffix = ""  # "-round2", ... for bench/run.py --rounds' later rounds: their files beside the first's

    def settle_client(self) -> None:
        """The sockets are up: settle this process's collector (bench/harness/clientgc.py),
        unless --client-gc default. Called a second or two before load starts, so the first
        messages do not wait for its full collection."""
        if getattr(self.args, "client_gc", "quiet") == "quiet":
            self.client_gc.quiet()

    def partial(self, results: dict) -> None:
        (self.run_dir / f"partial{self.round_suffix}.json").write_text(json.dumps(results, default=str))

    def prefix(self, name: str) -> str:
        self.prefix_n += 1
        return f"b{self.prefix_n}{name[:3]}"

    def meter(self, group: str | None = None) -> CpuMeter:
        """`group`: count only that ASGI group's processes as "asgi" (--interleave)."""
        st = self.stack
        pg_cache = {"t": 0.0, "pids": []}

        def pg() -> list[int]:
            if time.monotonic() - pg_cache["t"] > 5:
                pg_cache["pids"], pg_cache["t"] = st.postgres_pids(), time.monotonic()
            return pg_cache["pids"]

        return CpuMeter({
            "asgi": lambda: [p for pid in st.asgi_pids(group) for p in tree(pid)],
            # Each process alone too, where there are several (--event-loop uvloop,asyncio).
            **({f"asgi_{i}": (lambda i=i: [p for pid in st.asgi_pids(group)[i:i + 1] for p in tree(pid)])
                for i in range(self.args.asgi_procs)} if self.args.asgi_procs > 1 else {}),
            "client": lambda: [os.getpid()],
            "celery": lambda: st.pids("celery-"),
            # Also counted in "celery": the triage-queue worker alone (the model layer),
            # the second core's largest user.
            "model_worker": lambda: st.pids("celery-triage"),
            "redis": lambda: st.pids("redis"),
            "postgres_backends": pg,
        })

    def png(self, name: str) -> Path:
        return self.run_dir / f"{name}{self.round_suffix}.png"


async def _sampler(meter: CpuMeter, stop: asyncio.Event, every: float = 1.0) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        meter.sample()


def _asgi_rss(ctx: Ctx) -> int:
    return sum(rss_bytes(p) for pid in ctx.stack.asgi_pids() for p in tree(pid))


def _chat_socks(gen: Gen, pairs, urls: list[str], *, echo: bool = False) -> list[tuple[Sock, Sock]]:
    out = []
    for i, p in enumerate(pairs):
        yt = f"echo-{p.yp_id}-{p.conversation}-young_person" if echo else p.yp_token
        ct = f"echo-{p.co_id}-{p.conversation}-counsellor" if echo else p.co_token
        yp = Sock(gen, urls[i % len(urls)], yt, p.yp_id, "young_person", p.conversation)
        co = Sock(gen, urls[(i + 1) % len(urls)], ct, p.co_id, "counsellor", p.conversation)
        yp.peer, co.peer = co, yp
        out.append((yp, co))
    return out


async def _close_all(socks: list[Sock]) -> None:
    sem = asyncio.Semaphore(200)

    async def one(s):
        async with sem:
            await s.close()

    await asyncio.gather(*(one(s) for s in socks))


def _db_check(pairs, gen: Gen) -> dict:
    """Every acknowledged message is in PostgreSQL once, and every young person's message
    has its inline assessment (model layer progress reported, not required)."""
    from django.db.models import Count

    from chat.models import Message
    from triage.models import Assessment

    convs = [p.conversation for p in pairs]
    acked = {r.cmid for r in gen.recs.values() if r.ack is not None or r.deliv is not None}
    rows = list(Message.objects.filter(conversation_id__in=convs, kind="text", client_msg_id__isnull=False)
                .values_list("client_msg_id", "assessment_id", "sender_role"))
    stored = {str(c).replace("-", "") for c, _, _ in rows}
    sent_ids = {r.cmid for r in gen.recs.values() if r.conv in set(convs)}
    stored_ours = stored & sent_ids
    yp_rows = [a for c, a, role in rows if role == "young_person" and str(c).replace("-", "") in sent_ids]
    states = dict(Assessment.objects.filter(source_type="chat_message", conversation_id__in=convs)
                  .values_list("model_state").annotate(n=Count("id")).values_list("model_state", "n"))
    return {"acked_or_delivered": len(acked), "stored": len(stored_ours), "acked_not_stored": len(acked - stored),
            "young_person_messages_stored": len(yp_rows),
            "young_person_messages_triaged_inline": sum(1 for a in yp_rows if a is not None),
            "model_layer_states": states}


def _gap_check(socks: list[Sock]) -> dict:
    from chat.models import Conversation

    last = dict(Conversation.objects.filter(pk__in={s.conv for s in socks}).values_list("id", "last_seq"))
    gaps = [s.user_id for s in socks if s.contig < last.get(s.conv, 0)]
    return {"sockets_checked": len(socks), "sockets_with_gaps": len(gaps)}


async def _wait_synced(socks: list[Sock], timeout: float) -> None:
    from asgiref.sync import sync_to_async

    from chat.models import Conversation

    last = await sync_to_async(lambda: dict(Conversation.objects.filter(pk__in={s.conv for s in socks})
                                            .values_list("id", "last_seq")))()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        behind = [s for s in socks if s.contig < last.get(s.conv, 0)]
        if not behind:
            return
        for s in behind:
            if s.connected:
                s.request_sync()
        await asyncio.sleep(0.5)


# --- 1 and 3: steady counselling (optionally with crisis injection) ----------------------------
async def chat_run(ctx: Ctx, *, name: str, sessions: int, duration: float, crisis_p: float = 0.0,
                   clinicians: int = 0, forum: dict | None = None, storm: dict | None = None) -> dict:
    from asgiref.sync import sync_to_async

    st, args = ctx.stack, ctx.args
    prefix = ctx.prefix(name)
    pairs = await sync_to_async(data.sessions_create)(prefix, sessions)
    clin = await sync_to_async(data.users_create)(prefix + "k", clinicians, "clinician") if clinicians else []
    board_thread = None
    if forum:
        board_thread = await sync_to_async(data.forum_thread_create)(prefix)
        watchers = await sync_to_async(data.users_create)(prefix + "w", forum["watchers"], "young_person")
        authors = await sync_to_async(data.users_create)(prefix + "a", forum["authors"], "young_person")
    urls = st.start_asgi(n=args.asgi_procs, server=args.server, tag=name)
    gen = Gen(heads=args.heads, ws=args.client_ws)
    pairs_s = _chat_socks(gen, pairs, urls)
    chat_socks = [s for pr in pairs_s for s in pr]
    gen.clinicians = [Sock(gen, urls[i % len(urls)], tok, uid, "clinician") for i, (uid, tok) in enumerate(clin)]
    watch_socks = []
    if forum:
        for i, (uid, tok) in enumerate(watchers):
            s = Sock(gen, urls[i % len(urls)], tok, uid, "young_person")
            s.thread = board_thread[1]
            watch_socks.append(s)
    all_socks = chat_socks + gen.clinicians + watch_socks
    rss0 = _asgi_rss(ctx)
    t_conn = time.monotonic()
    connect_times = await connect_all(all_socks)
    connect_s = time.monotonic() - t_conn
    await _wait_synced(chat_socks, 30)
    ctx.settle_client()  # before the pause, so the load starts after its collection
    await asyncio.sleep(2)
    rss1 = _asgi_rss(ctx)
    la = loadavg()
    meter = ctx.meter()
    meter.start()
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sampler(meter, stop))
    rate = sessions * 2 * SIDE_RATE
    print(f"  {name}: {len(all_socks)} sockets connected in {connect_s:.1f}s; offering {rate:.1f} msg/s for {duration:.0f}s",
          flush=True)
    marks = []
    phase_fn = None
    extra_tasks = []
    if forum:
        b0, b1 = forum["at"], forum["at"] + forum["burst_s"]
        marks = [(b0, "burst start"), (b1, "burst end")]

        def phase_fn(el):
            return "before" if el < b0 else ("burst" if el < b1 + forum.get("tail_s", 5) else "after")

        extra_tasks.append(asyncio.create_task(_forum_burst(gen, urls, authors, board_thread[1], forum)))
    if storm:
        marks = [(storm["at"], "all sockets drop"), (storm["at"] + storm["window_s"], "reconnects done")]
        extra_tasks.append(asyncio.create_task(_storm(chat_socks + gen.clinicians, storm)))
    ctx.client_gc.take()  # from here on: the collections during load
    spies = _profile_start(ctx, name, duration)
    t_load = time.monotonic()
    await gen.open_loop(chat_socks, lambda _el: rate, duration, crisis_p=crisis_p, phase_fn=phase_fn)
    for t in extra_tasks:
        await t
    _profile_stop(spies)
    client_gc = ctx.client_gc.take()
    await gen.drain(20 if not storm else 40, need_esc=bool(clinicians), clinicians=1)
    if storm:
        await _wait_synced(chat_socks, 30)
    t_end = time.monotonic()
    stop.set()
    await sampler
    recs = list(gen.recs.values())
    result = {
        "scenario": name, "sessions": sessions, "sockets": len(all_socks), "duration_s": duration,
        "offered_rate_msgs_per_s": round(rate, 1), "crisis_fraction_of_all_messages": crisis_p / 2 if crisis_p else 0,
        "clinician_sockets": len(gen.clinicians), "loadavg_at_start": la, "loadavg_at_end": loadavg(),
        "connect": {"seconds_all": round(connect_s, 2), "per_socket_ms": metrics.summary_ms(connect_times)},
        "asgi_rss": {"before_connect_mb": round(rss0 / 2**20, 1), "after_connect_mb": round(rss1 / 2**20, 1),
                     "per_socket_kb": round((rss1 - rss0) / max(len(all_socks), 1) / 1024, 1)},
        "chat": metrics.chat_summary(recs),
        "cpu": meter.diff(meter.series[0], meter.series[-1]),
        "frames_received": dict(gen.frames), "error_frames": dict(gen.errors), "other_errors": gen.other_errors[:5],
        "client_errors": dict(gen.client_errors), "client_gc": client_gc,
    }
    delivered = result["chat"]["delivered"]
    if delivered:
        result["asgi_cpu_ms_per_message"] = round(result["cpu"]["cpu_s"]["asgi"] * 1000 / delivered, 3)
    if forum:
        result["chat_by_phase"] = {ph: metrics.chat_summary(recs, tag=ph) for ph in ("before", "burst", "after")}
        result["forum"] = _forum_summary(gen, forum)
        result["moderation"] = await sync_to_async(_moderation_state)(board_thread[1])
    if storm:
        result["storm"] = {
            "reconnect_ms": metrics.summary_ms([s.reconnect_times[-1] for s in chat_socks + gen.clinicians
                                                if len(s.reconnect_times) > 1]),
            "reconnected": sum(1 for s in chat_socks + gen.clinicians if len(s.reconnect_times) > 1),
            "sockets": len(chat_socks + gen.clinicians),
            "handshake_failures_retried": sum(s.connect_failures for s in chat_socks + gen.clinicians),
            "gaps": await sync_to_async(_gap_check)(chat_socks),
        }
    result["db"] = await sync_to_async(_db_check)(pairs, gen)
    done = (result["db"].get("model_layer_states") or {}).get("done")
    if done:  # as deployed (batches as they come, a shared core); the triage scenario is the isolated figure
        result["model_worker_cpu_ms_per_assessment"] = round(result["cpu"]["cpu_s"]["model_worker"] * 1000 / done, 1)
    result["celery_queue_backlog"] = {q: st.redis_queue_len(q) for q in ("triage", "crisis", "moderation")}
    ser = metrics.series(recs, t_load)
    result["series"] = ser
    result["cpu_series"] = [{"t": round(c["t"] - t_load, 1), **{k: v for k, v in c.items() if k != "t"}}
                            for c in meter.utilisation_series()]
    extra = {}
    if crisis_p:
        crisis = [r for r in recs if r.crisis and r.esc_first is not None]
        extra["crisis→escalation.new"] = [
            {"t": p["t"], "p99": p["p99"]} for p in _series_of(crisis, t_load, lambda r: r.esc_first - r.sched, 5)]
    if forum:
        extra["forum post→watchers"] = [
            {"t": p["t"], "p99": p["p99"]} for p in _post_series(gen, t_load)]
    plot.latency_throughput(ctx.png(name), f"{name}: {sessions} sessions, {len(all_socks)} sockets, {rate:.0f} msg/s offered "
                            f"({args.server} on {args.event_loop}, {args.asgi_procs} proc, layer={args.layer})", ser, marks=marks, extra=extra,
                            cpu=result["cpu_series"], threshold_ms=50)
    result["plot"] = str(ctx.png(name))
    result["wall_s"] = round(t_end - t_load, 1)
    await _close_all(all_socks)
    st.stop_asgi()
    return result


def _profile_start(ctx: Ctx, name: str, duration: float) -> list[subprocess.Popen]:
    if not getattr(ctx.args, "profile", False):
        return []
    spy = Path(sys.executable).with_name("py-spy")
    return [subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration", str(int(duration)), "--rate", "100",
                              "--format", "raw", "--nonblocking", "--gil", "-o", str(ctx.run_dir / f"{name}-asgi{i}.collapsed")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i, pid in enumerate(ctx.stack.asgi_pids())]


def _profile_stop(spies: list[subprocess.Popen]) -> None:
    for p in spies:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.terminate()


def _series_of(recs, start: float, fn, bucket: float) -> list[dict]:
    b: dict[int, list[float]] = {}
    for r in recs:
        b.setdefault(int((r.sched - start) // bucket), []).append(fn(r) * 1000)
    return [{"t": k * bucket, "p99": metrics.pct(v, 0.99)} for k, v in sorted(b.items())]


def _post_series(gen: Gen, start: float) -> list[dict]:
    b: dict[int, list[float]] = {}
    for p in gen.posts.values():
        b.setdefault(int(p.sched - start), []).extend(x * 1000 for x in p.arrivals)
    return [{"t": float(k), "p99": metrics.pct(v, 0.99)} for k, v in sorted(b.items())]


async def _forum_burst(gen: Gen, urls: list[str], authors, thread_id: int, cfg: dict) -> None:
    await asyncio.sleep(cfg["at"])
    start = time.monotonic()
    n, span = cfg["posts"], cfg["burst_s"]
    times = sorted(random.uniform(0, span) for _ in range(n))
    tasks = []
    # At most 16 requests in flight (as a front proxy's upstream pool would): each one holds
    # a PostgreSQL connection in its request thread, and the server is shared.
    sem = asyncio.Semaphore(cfg.get("http_concurrency", 16))
    for i, off in enumerate(times):
        delay = start + off - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        key = os.urandom(16).hex()
        rec = PostRec(key, start + off)
        gen.posts[key] = rec
        uid, tok = authors[i % len(authors)]
        body = f"{key} t={time.time():.6f} revision is going okay, anyone else finding the timetable hard this week?"
        tasks.append(asyncio.create_task(_post_one(rec, urls[i % len(urls)], tok, thread_id, body, sem)))
    await asyncio.gather(*tasks)
    deadline = time.monotonic() + 30  # let the pushes arrive before counting them
    while time.monotonic() < deadline:
        if all(len(p.arrivals) >= cfg["watchers"] for p in gen.posts.values() if p.status == 201):
            break
        await asyncio.sleep(0.5)


async def _post_one(rec: PostRec, url: str, token: str, thread_id: int, body: str, sem: asyncio.Semaphore) -> None:
    try:
        async with sem:
            rec.sent = time.monotonic()
            rec.status = await http_post(url, f"/api/v1/forums/threads/{thread_id}/posts/", token, {"body": body})
    except Exception as exc:  # counted as an error, never silently
        rec.status = f"error:{type(exc).__name__}"
    rec.done = time.monotonic()


def _forum_summary(gen: Gen, cfg: dict) -> dict:
    posts = list(gen.posts.values())
    ok = [p for p in posts if p.status == 201]
    arrivals = [x for p in posts for x in p.arrivals]
    expected = len(ok) * cfg["watchers"]
    return {
        "posts_sent": len(posts), "posts_201": len(ok), "statuses": sorted({str(p.status) for p in posts}),
        "post_http_ms": metrics.summary_ms([p.done - p.sched for p in posts if p.done]),
        "watchers": cfg["watchers"], "forum_post_frames_expected": expected, "forum_post_frames_received": len(arrivals),
        "post_to_first_watcher_ms": metrics.summary_ms([p.first - p.sched for p in posts if p.first]),
        "post_to_every_watcher_ms": metrics.summary_ms(arrivals),
    }


def _moderation_state(thread_id: int) -> dict:
    from django.db.models import Count

    from moderation.models import PostCheck

    qs = PostCheck.objects.filter(post__thread_id=thread_id)
    return {"post_checks": dict(qs.values_list("state").annotate(n=Count("id")).values_list("state", "n"))}


async def _storm(socks: list[Sock], cfg: dict) -> None:
    await asyncio.sleep(cfg["at"])
    for s in socks:
        s.drop()
    start = time.monotonic()
    order = sorted((random.uniform(0, cfg["window_s"]), i) for i in range(len(socks)))
    tasks = []
    for off, i in order:
        delay = start + off - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(socks[i].connect(resync=True)))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        print(f"  storm: {len(failed)} sockets could not reconnect: {type(failed[0]).__name__}", flush=True)


# --- 2 and 7: capacity ladder for the product and the baselines (bare echo, floor) ---------------
# The baselines' ASGI applications: token `echo-<user>-<conversation>-<role>`, no sync.
BASELINES = {"echo": ("bench.echo_asgi:application", "echo baseline"),
             "floor": ("bench.floor_asgi:application", "floor baseline (triage + one async INSERT)")}


async def ladder(ctx: Ctx, *, baseline: str | None, sessions: int, step_s: float, rates: list[float],
                 p99_limit_ms: float = 250) -> dict:
    """The product's ladder (baseline None) or a baseline's (BASELINES), same sessions and steps."""
    run = _Ladder(ctx, baseline=baseline, step_s=step_s, p99_limit_ms=p99_limit_ms)
    await run.open(sessions)
    for i in range(len(rates)):
        if not await run.step(rates, i):
            break
    return await run.close()


# The echo's knee sits about twice as many steps up the default rates as the product's and
# the floor's (2,000-3,200 msg/s against 600-1,400), so it takes two steps to their one.
INTERLEAVE_WEIGHT = {"echo": 2}


async def ladders_interleaved(ctx: Ctx, *, baselines: list[str | None], sessions: int, step_s: float,
                              rates: list[float], p99_limit_ms: float = 250) -> dict[str, dict]:
    """The ladders of `baselines` (None: the product's) side by side: every server up with
    its sockets connected, and their steps taken in turn (the echo's two at a time,
    INTERLEAVE_WEIGHT), one server under load at a time, until each has failed a step or
    run out of rates. Taken one after another, the ladders of a round reached their knees
    minutes apart, and this instance's speed drifted by up to half in that time (docs/
    benchmarks.md, thirty-first pass): interleaved, a slow stretch falls on all of them."""
    origin = time.monotonic()  # each step's `at_s`: one clock for all the ladders
    runs = [_Ladder(ctx, baseline=b, step_s=step_s, p99_limit_ms=p99_limit_ms, group=b or "product", origin=origin)
            for b in baselines]
    opened: list[_Ladder] = []
    try:
        for run in runs:
            await run.open(sessions)
            opened.append(run)
        at = {run.name: 0 for run in runs}  # the next rate's index of each ladder still climbing
        while at:
            for run in runs:
                for _ in range(INTERLEAVE_WEIGHT.get(run.baseline, 1)):
                    if run.name not in at:
                        break
                    i = at[run.name]
                    if not await run.step(rates, i) or i + 1 == len(rates):
                        del at[run.name]
                    else:
                        at[run.name] = i + 1
    except BaseException:
        for run in opened:  # their samplers stopped and sockets closed; the caller stops the servers
            with contextlib.suppress(Exception):
                await run.close()
        raise
    names = [run.name for run in runs]
    out = {}
    for run in runs:
        out[run.name] = {**await run.close(), "interleaved_with": [n for n in names if n != run.name]}
    return out


class _Ladder:
    """One capacity ladder: its sessions, server and sockets (open), its steps (step), its
    result (close)."""

    def __init__(self, ctx: Ctx, *, baseline: str | None, step_s: float, p99_limit_ms: float, group: str = "",
                 origin: float | None = None) -> None:
        self.ctx, self.baseline, self.step_s, self.p99_limit_ms, self.group = ctx, baseline, step_s, p99_limit_ms, group
        self.origin = origin  # interleaved ladders' shared clock (steps record `at_s` from it)
        self.name = f"ladder_{baseline}" if baseline is not None else "ladder"
        self.steps: list[dict] = []
        self.knee: dict | None = None
        self.knee_reached = False  # False when every step passed: the knee lies above the last rate

    async def open(self, sessions: int) -> None:
        from asgiref.sync import sync_to_async

        ctx, st, args = self.ctx, self.ctx.stack, self.ctx.args
        is_baseline = self.baseline is not None
        self.sessions = sessions
        pairs = await sync_to_async(data.sessions_create)(ctx.prefix(self.name), sessions)
        app, self.title = BASELINES[self.baseline] if is_baseline else ("config.asgi:application", "product")
        urls = st.start_asgi(n=args.asgi_procs, server=args.server, app=app, tag=self.name, group=self.group)
        self.gen = Gen(heads=args.heads, ws=args.client_ws)
        self.socks = [s for pr in _chat_socks(self.gen, pairs, urls, echo=is_baseline) for s in pr]
        await connect_all(self.socks)
        if not is_baseline:
            await _wait_synced(self.socks, 30)
        ctx.settle_client()
        await asyncio.sleep(1)
        ctx.client_gc.take()
        self.meter = ctx.meter(self.group or None)
        self.meter.start()
        self.stop = asyncio.Event()
        self.sampler = asyncio.create_task(_sampler(self.meter, self.stop))
        self.t_load = time.monotonic()

    async def step(self, rates: list[float], i: int) -> bool:
        """One step at `rates[i]`; False: it failed (p99 over the limit, or anything lost or
        errored), and this ladder's knee is the last step that passed."""
        gen, st, rate = self.gen, self.ctx.stack, rates[i]
        # Records are grouped by this tag: a rate given twice (--rates 150,150) is two steps.
        tag = f"{rate:g}" if rates.count(rate) == 1 else f"{rate:g}#{i + 1}"
        gen.phase = tag
        t0 = time.monotonic()
        await gen.open_loop(self.socks, lambda _el, r=rate: r, self.step_s, phase_fn=lambda _el, t=tag: t)
        t1 = time.monotonic()
        await gen.drain(3)
        self.meter.sample()
        s = metrics.chat_summary(list(gen.recs.values()), tag=tag)
        cpu = self.meter.window(t0, t1)
        delivered_rate = s["delivered"] / self.step_s
        row = {"offered": rate, "delivered_per_s": round(delivered_rate, 1), "lost_or_late": s["lost"],
               "client_gc": self.ctx.client_gc.take(),
               "errored": s["errored"], "p50_ms": s["delivery_ms"].get("p50"), "p99_ms": s["delivery_ms"].get("p99"),
               "client_lag_p99_ms": s["client_send_lag_ms"].get("p99"), "cpu_s": cpu["cpu_s"],
               "core_util": {k: v["util"] for k, v in cpu["cores"].items()}, "loadavg": loadavg(),
               "started_s": round(t0 - self.t_load, 1)}
        if self.origin is not None:
            row["at_s"] = round(t0 - self.origin, 1)
        if s["delivered"]:
            row["asgi_cpu_ms_per_msg"] = round(cpu["cpu_s"]["asgi"] * 1000 / s["delivered"], 3)
        self.steps.append(row)
        print(f"    {self.name} {rate:>6g}/s: delivered {delivered_rate:7.1f}/s p50 {row['p50_ms']} p99 {row['p99_ms']} ms "
              f"lost {s['lost']} asgi core {row['core_util'].get('cpu' + (st.layout.asgi or '0'))}", flush=True)
        p99 = row["p99_ms"] or 1e9
        if p99 > self.p99_limit_ms or s["lost"] > 0 or s["errored"] > 0:
            self.knee_reached = True
            return False
        self.knee = row
        await gen.drain(10)
        return True

    async def close(self) -> dict:
        ctx, st, args, gen, knee = self.ctx, self.ctx.stack, self.ctx.args, self.gen, self.knee
        self.stop.set()
        await self.sampler
        recs = list(gen.recs.values())
        ser = metrics.series(recs, self.t_load)
        cpu_series = [{"t": round(c["t"] - self.t_load, 1), **{k: v for k, v in c.items() if k != "t"}}
                      for c in self.meter.utilisation_series()]
        plot.latency_throughput(ctx.png(self.name), f"{self.title} capacity ladder: {self.sessions} sessions, "
                                f"{len(self.socks)} sockets ({args.server} on {args.event_loop}, {args.asgi_procs} proc"
                                f"{' pinned to 1 core' if st.layout.pin else ''})",
                                ser, threshold_ms=self.p99_limit_ms, cpu=cpu_series)
        await _close_all(self.socks)
        st.stop_asgi(self.group or None)
        cores_for_asgi = 1 if st.layout.pin else (os.cpu_count() or 1)
        return {"scenario": self.name, "sessions": self.sessions, "sockets": len(self.socks), "step_s": self.step_s,
                "p99_limit_ms": self.p99_limit_ms, "steps": self.steps,
                "knee_msgs_per_s": knee["delivered_per_s"] if knee else None,
                "knee_msgs_per_s_per_core": round(knee["delivered_per_s"] / cores_for_asgi, 1) if knee else None,
                "knee_reached": self.knee_reached,
                "asgi_cores": cores_for_asgi, "series": ser, "cpu_series": cpu_series, "plot": str(ctx.png(self.name)),
                "error_frames": dict(gen.errors), "other_errors": gen.other_errors[:5],
                "client_errors": dict(gen.client_errors)}


# --- 6: triage throughput ---------------------------------------------------------------------------
def triage(ctx: Ctx, n: int = 2000) -> dict:
    cmd = [sys.executable, str(Path(__file__).with_name("triage_run.py")), "--n", str(n)]
    if ctx.stack.layout.asgi:
        cmd = ["taskset", "-c", ctx.stack.layout.asgi, *cmd]
    env = dict(ctx.stack.env, OMP_NUM_THREADS="1")
    la = loadavg()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return {"scenario": "triage", "error": out.stderr[-2000:]}
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(scenario="triage", loadavg_at_start=la, pinned_core=ctx.stack.layout.asgi)
    labels = [("inline", "inline")] + [(f"model layer b{b}", f"model_b{b}") for b in (1, 8, 32)] + \
        [(f"model on torch b{b}", f"model_torch_b{b}") for b in (1, 8, 32)] + [("BERT-base b1", "bert_b1"), ("BERT-base b32", "bert_b32")]
    vals = {label: res[f"{key}_msgs_per_s"] for label, key in labels if res.get(f"{key}_msgs_per_s")}
    plot.bars(ctx.png("triage"), "triage throughput, one core, messages/s (log scale)", vals, "messages/s per core")
    res["plot"] = str(ctx.png("triage"))
    return res
