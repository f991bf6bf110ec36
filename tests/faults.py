"""Process-level fault helpers for the reliability tests: a private Redis the test may
kill and restart (so a fault test never disturbs the machine's shared Redis), Celery
beat, and a reconnecting websocket client built on the `websockets` package."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import websockets

from tests.conftest import ROOT, _die_with_parent, _free_port, _spawn, process_env


class PrivateRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ok = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True).stdout.strip()
            if ok == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self) -> None:
        self.kill()
        self.start()

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def cli(self, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=True).stdout


def env_with(redis: PrivateRedis, **extra: str) -> dict[str, str]:
    env = process_env()
    env["REDIS_URL"] = redis.url
    env.update(extra)
    return env


class Proc:
    """A child process (worker, beat, Daphne) that can be SIGKILLed and restarted."""

    def __init__(self, cmd: list[str], name: str, env: dict[str, str]) -> None:
        self.cmd, self.name, self.env = cmd, name, env
        self._cm = None
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self._cm = _spawn(self.cmd, f"{self.name}-{self.starts}.log", self.env)
        self.proc = self._cm.__enter__()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.stop()

    def stop(self) -> None:
        if self._cm:
            self._cm.__exit__(None, None, None)
            self._cm = None


def celery_worker_proc(env: dict[str, str], queues: str = "default,triage,crisis,moderation") -> Proc:
    return Proc([sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", "2", "-l", "INFO",
                 "--without-gossip", "--without-mingle", "-n", f"fault{os.getpid()}-{time.monotonic_ns()}@%h"], "fault-worker", env)


def celery_beat_proc(env: dict[str, str], tmp: Path) -> Proc:
    return Proc([sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "INFO",
                 "-s", str(tmp / "beat-schedule"), "--pidfile", ""], "fault-beat", env)


def daphne_proc(env: dict[str, str]) -> tuple[Proc, str]:
    port = _free_port()
    proc = Proc([sys.executable, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                f"fault-daphne-{port}", env)
    return proc, f"ws://127.0.0.1:{port}/ws/"


class Client:
    """A websocket client that authenticates with its token and reconnects on any failure."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.ws = None
        self.reconnects = -1

    async def connect(self, *, deadline: float) -> list[dict]:
        """Connect (retrying until `deadline`); returns the frames that arrived with auth.ok."""
        while True:
            try:
                self.ws = await websockets.connect(
                    self.url, origin="http://127.0.0.1", subprotocols=["earlyhelp.v1", f"token.{self.token}"],
                    open_timeout=3, close_timeout=1,
                )
                first = json.loads(await asyncio.wait_for(self.ws.recv(), 3))
                if first.get("type") != "auth.ok":
                    raise ConnectionError(first)
                self.reconnects += 1
                return [first]
            except (TimeoutError, OSError, websockets.WebSocketException, ConnectionError):
                await self.close()
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)

    async def send(self, frame: dict) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float) -> dict:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        self.ws = None


__all__ = ["ROOT", "PrivateRedis", "Proc", "Client", "env_with", "celery_worker_proc", "celery_beat_proc", "daphne_proc"]


def live_session(young, counsellor, *, topic: str = "test", body: str = "hello"):
    """A young person's request taken by an available counsellor (capacity 1): the Session."""
    from chat import services as chat

    request = chat.session_request(young_person=young, topic=topic, body=body)
    chat.counsellor_status_set(user=counsellor, status="available", capacity=1)
    return chat.session_accept(counsellor=counsellor, session_id=request.session.id)


def sessions_for_storm(make_user, *, clients: int, clinician_handle: str = "dr_storm"):
    """A primary clinician on duty and `clients` live chat sessions; returns tokens."""
    import datetime as dt

    from django.utils import timezone

    from accounts.models import Role, Shift, Tier
    from accounts.tokens import token_issue
    now = timezone.now()
    clinician = make_user(Role.CLINICIAN, handle=clinician_handle)
    Shift.objects.create(clinician=clinician, tier=Tier.PRIMARY, start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=2))
    pairs = []
    for n in range(clients):
        young = make_user()
        session = live_session(young, make_user(Role.COUNSELLOR), topic="storm")
        pairs.append((token_issue(user=young)[1], session.conversation_id, n))
    return token_issue(user=clinician)[1], pairs


def escalation_created() -> dict[int, float]:
    """Escalation id -> creation time (epoch seconds)."""
    from django.db import connections

    from triage.models import Escalation

    try:
        return {i: created.timestamp() for i, created in Escalation.objects.values_list("id", "created_at")}
    finally:
        connections.close_all()  # runs in a worker thread: leave no session behind


async def crisis_storm(urls: list[str], clinician_token: str, pairs, *, per_client: int, plan, actions,
                       interval_s: float = 0.35, budget_s: float = 180) -> dict:
    """Young people send `per_client` crisis messages each (retrying the same client_msg_id
    until acknowledged, failing over between `urls`), while `plan` [(seconds, action)]
    runs `actions[action]()` in a thread. A clinician socket records every escalation it
    sees (escalation.new, or escalation.list on (re)connect). Returns what was missed and
    the time from the last fault until every escalation had reached the clinician."""
    import uuid

    expected_total = len(pairs) * per_client
    done = asyncio.Event()
    seen: dict[int, float] = {}  # escalation id -> wall-clock time a clinician socket first had it
    hard_deadline = time.monotonic() + budget_s

    def record(frame) -> list[int]:
        if frame.get("type") == "escalation.new":
            ids = [frame["escalation"]["id"]]
        elif frame.get("type") == "escalation.list":
            ids = [e["id"] for e in frame["escalations"]]
        else:
            return []
        now = time.time()
        for escalation_id in ids:
            seen.setdefault(escalation_id, now)
        return ids

    pending_receipts: set[int] = set()
    last_flush = {"t": 0.0}

    async def confirm(clinician, ids, *, flush: bool = False):
        # Delivery receipts, batched as the clinician page does (one frame per burst),
        # so a redelivery storm never trips the per-socket rate limit.
        pending_receipts.update(ids)
        due = flush or time.monotonic() - last_flush["t"] > 0.3
        if pending_receipts and due:
            batch = sorted(pending_receipts)
            pending_receipts.clear()
            last_flush["t"] = time.monotonic()
            await clinician.send({"type": "escalation.received", "escalations": batch})

    async def listen():
        n = 0
        while not done.is_set():
            clinician = Client(urls[n % len(urls)], clinician_token)
            n += 1
            try:
                for frame in await clinician.connect(deadline=hard_deadline):
                    await confirm(clinician, record(frame))
                while not done.is_set():
                    try:
                        await confirm(clinician, record(await clinician.recv(timeout=0.2)))
                    except TimeoutError:
                        await confirm(clinician, [], flush=True)
            except Exception:
                await asyncio.sleep(0.2)
            finally:
                await clinician.close()

    async def send_all(token, conversation, n):
        reconnects, attempt = 0, n
        client = Client(urls[attempt % len(urls)], token)
        for i in range(per_client):
            frame = {"type": "message.send", "conversation": conversation, "client_msg_id": str(uuid.uuid4()),
                     "body": f"I have taken 20 paracetamol ({n}-{i})"}
            while True:  # the same client_msg_id until acknowledged: retries are harmless
                try:
                    if client.ws is None:
                        await client.connect(deadline=min(hard_deadline, time.monotonic() + 5))
                    await client.send(frame)
                    while True:
                        reply = await client.recv(timeout=3)
                        if reply.get("type") == "message.ack" and reply.get("client_msg_id") == frame["client_msg_id"]:
                            break
                        if reply.get("type") == "error" and reply.get("code") == "rate_limited":
                            raise TimeoutError
                    break
                except Exception:
                    await client.close()
                    if time.monotonic() > hard_deadline:
                        raise
                    reconnects += 1
                    attempt += 1  # fail over to the next server
                    client = Client(urls[attempt % len(urls)], token)
                    await asyncio.sleep(0.3)
            await asyncio.sleep(interval_s)
        await client.close()
        return reconnects

    last_fault = {"t": time.monotonic(), "wall": time.time()}
    counts: dict[str, int] = {}

    async def faults():
        start = time.monotonic()
        for at, action in plan:
            await asyncio.sleep(max(0, start + at - time.monotonic()))
            await asyncio.to_thread(actions[action])
            counts[action] = counts.get(action, 0) + 1
            last_fault["t"], last_fault["wall"] = time.monotonic(), time.time()

    listener = asyncio.create_task(listen())
    results = await asyncio.gather(faults(), *(send_all(t, c, n) for t, c, n in pairs))
    expected: dict[int, float] = {}
    recovered_at = None
    while time.monotonic() < hard_deadline:
        expected = await asyncio.to_thread(escalation_created)
        if len(expected) >= expected_total and set(expected) <= set(seen):
            recovered_at = time.monotonic()
            break
        await asyncio.sleep(0.25)
    done.set()
    await listener
    # Per escalation: how long after it existed *and* the faults were over did a
    # clinician socket have it. The worst case is the "within N s of recovery" figure.
    after_recovery = [seen[i] - max(created, last_fault["wall"]) for i, created in expected.items() if i in seen]
    return {
        "missing": set(expected) - set(seen),
        "recovery_s": (recovered_at or time.monotonic()) - last_fault["t"],
        "worst_after_recovery_s": max(after_recovery, default=0.0),
        "client_reconnects": sum(results[1:]),
        "faults": counts,
    }


class TranscriptFollower:
    """A chat client's view of one conversation: live `message.new` frames, a `sync`
    whenever a gap in `seq` shows (or the server resends chat.state), and a final sync.
    `seqs()` is what the user would see."""

    def __init__(self, client: Client, conversation: int) -> None:
        self.client, self.conversation = client, conversation
        self.messages: dict[int, dict] = {}
        self.last = 0
        self.syncs = 0
        self.live = 0

    async def handle(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "message.new" and frame.get("conversation") == self.conversation:
            self.live += 1
            if frame["seq"] > self.last + 1:
                await self.sync()
            self.messages[frame["seq"]] = frame
            self.last = max(self.last, frame["seq"])
        elif kind == "sync.result" and frame.get("conversation") == self.conversation:
            for message in frame["messages"]:
                self.messages[message["seq"]] = message
                self.last = max(self.last, message["seq"])
        elif kind == "chat.state":
            await self.sync()

    async def sync(self) -> None:
        self.syncs += 1
        await self.client.send({"type": "sync", "conversation": self.conversation, "after_seq": self.last})

    async def pump(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.handle(await self.client.recv(timeout=0.2))
            except TimeoutError:
                continue

    def seqs(self) -> list[int]:
        return sorted(self.messages)


async def say(client: Client, conversation: int, body: str) -> None:
    """Send one message and wait for its ack (other frames are ignored)."""
    import uuid

    cmid = str(uuid.uuid4())
    await client.send({"type": "message.send", "conversation": conversation, "client_msg_id": cmid, "body": body})
    while True:
        reply = await client.recv(timeout=10)
        if reply.get("type") == "message.ack" and reply.get("client_msg_id") == cmid:
            return
        if reply.get("type") == "error":
            raise AssertionError(reply)


def storm_run(make_user, tmp_path, *, clients: int, per_client: int, daphnes: int, worker_queues: str, plan,
              **storm_kwargs) -> dict:
    """Start a private Redis, `daphnes` Daphne processes, a Celery worker on `worker_queues`
    and beat; run `crisis_storm` with `plan` (actions: kill_worker, start_worker,
    restart_redis, pause_redis_10s, kill_asgi_<n>); stop everything; return the report."""
    clinician_token, pairs = sessions_for_storm(make_user, clients=clients)
    redis = PrivateRedis()
    redis.start()
    env = env_with(redis)
    servers = [daphne_proc(env) for _ in range(daphnes)]
    worker, beat = celery_worker_proc(env, queues=worker_queues), celery_beat_proc(env, tmp_path)
    procs = [proc for proc, _ in servers] + [worker, beat]
    for proc in procs:
        proc.start()

    def pause_redis_10s():
        redis.pause()
        time.sleep(10)
        redis.resume()

    actions = {"kill_worker": worker.kill, "start_worker": worker.start, "restart_redis": redis.restart,
               "pause_redis_10s": pause_redis_10s}
    actions.update({f"kill_asgi_{n}": proc.kill for n, (proc, _) in enumerate(servers)})
    try:
        return asyncio.run(crisis_storm([url for _, url in servers], clinician_token, pairs, per_client=per_client,
                                        plan=plan, actions=actions, **storm_kwargs))
    finally:
        for proc in reversed(procs):
            proc.stop()
        redis.kill()


def assert_stored_triaged_escalated_once(total: int) -> None:
    """Every crisis message of a storm stored once, triaged once and escalated once."""
    from accounts.models import Role
    from chat.models import Message
    from triage.models import Assessment, Escalation

    sent = Message.objects.filter(sender__role=Role.YOUNG_PERSON, body__startswith="I have taken 20 paracetamol")
    assert sent.count() == total, "every message stored exactly once"
    ids = set(sent.values_list("id", flat=True))
    assert Assessment.objects.filter(source_type="chat_message", source_id__in=ids).count() == total, "triaged once"
    assert Escalation.objects.filter(source_type="chat_message", source_id__in=ids).count() == total, "escalated once"
