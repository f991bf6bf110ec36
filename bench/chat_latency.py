"""Benchmark: chat message delivery latency and messages/s through Daphne +
channels_redis + PostgreSQL, for N concurrent conversations.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/9 \
        .venv/bin/python bench/chat_latency.py --conversations 20 --messages 50 --servers 2

Creates a throwaway test database, starts --servers Daphne processes, and opens N
conversations through the real protocol (session.request, counsellor.status,
session.accept), the young person on one process and the counsellor on another. Each
conversation then plays --messages turns closed-loop: one side sends message.send, the
other side's message.new ends the turn, and the receiver answers. Reports:
- delivery latency p50/p99: send() of message.send -> message.new at the other client
  (the message is stored, seq-numbered, triaged when from the young person, committed,
  and fanned out through Redis before it can arrive);
- ack latency p50/p99: send() -> message.ack on the sender;
- messages/s: delivered messages / wall time of the exchange phase.
Every message is then checked in the database: seq gapless per conversation, no loss.
The clients run in this process on the same machine as the servers (2 cores here):
figures are for this box, client cost included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.chat_settings"
os.environ["EARLYHELP_TEST_EAGER"] = "0"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.waiting: dict[str, asyncio.Future] = {}
        self.inbox: asyncio.Queue = asyncio.Queue()

    @classmethod
    async def open(cls, base: str, token: str) -> Client:
        from websockets.asyncio.client import connect

        ws = await connect(base.replace("http://", "ws://") + "/ws/", origin="http://localhost",
                           subprotocols=["earlyhelp.v1", f"token.{token}"], proxy=None, max_queue=None)
        client = cls(ws)
        asyncio.get_running_loop().create_task(client._reader())
        return client

    async def _reader(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                now = time.perf_counter()
                await self.inbox.put((now, frame))
        except Exception:
            return

    async def expect(self, frame_type: str, timeout: float = 20, match=None) -> tuple[float, dict]:
        async with asyncio.timeout(timeout):
            while True:
                at, frame = await self.inbox.get()
                if frame.get("type") == "error":
                    raise RuntimeError(f"error frame: {frame}")
                if frame.get("type") == frame_type and (match is None or match(frame)):
                    return at, frame

    async def send(self, **frame) -> float:
        t = time.perf_counter()
        await self.ws.send(json.dumps(frame))
        return t


async def run(urls: list[str], pairs: list[tuple[str, str]], messages: int) -> dict:
    # Connect and set up every conversation through the protocol.
    convs = []
    for i, (yp_tok, co_tok) in enumerate(pairs):
        yp = await Client.open(urls[i % len(urls)], yp_tok)
        co = await Client.open(urls[(i + 1) % len(urls)], co_tok)
        await yp.send(type="session.request", topic="bench", body="hello")
        _, queued = await yp.expect("session.queued")
        await co.send(type="counsellor.status", status="available")
        await co.expect("counsellor.status")
        await co.send(type="session.accept", session=queued["session"])
        await co.expect("session.assigned")
        await yp.expect("session.assigned")
        convs.append((queued["conversation"], yp, co))

    delivery: list[float] = []
    acks: list[float] = []

    async def converse(conv: int, yp: Client, co: Client) -> None:
        sides = (yp, co)
        for turn in range(messages):
            sender, receiver = sides[turn % 2], sides[(turn + 1) % 2]
            cmid = str(uuid.uuid4())
            t0 = await sender.send(type="message.send", conversation=conv, client_msg_id=cmid,
                                   body=f"turn {turn}: how are you feeling about that?")
            ack_at, _ = await sender.expect("message.ack", match=lambda f, c=cmid: f["client_msg_id"] == c)
            got_at, _ = await receiver.expect("message.new", match=lambda f, c=cmid: f.get("client_msg_id") == c)
            acks.append(ack_at - t0)
            delivery.append(got_at - t0)

    start = time.perf_counter()
    await asyncio.gather(*(converse(*c) for c in convs))
    wall = time.perf_counter() - start
    for _, yp, co in convs:
        await yp.ws.close()
        await co.ws.close()
    return {"delivery": delivery, "acks": acks, "wall": wall, "conversations": [c[0] for c in convs]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50, help="messages per conversation (alternating sides)")
    parser.add_argument("--servers", type=int, default=2)
    args = parser.parse_args()
    if not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")):
        sys.exit("needs DATABASE_URL (PostgreSQL) and REDIS_URL")

    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.db import connection

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    procs = []
    try:
        from accounts.models import Role, User
        from accounts.tokens import token_issue

        pairs = []
        for i in range(args.conversations):
            yp = User.objects.create_user(f"benchyp{i}", "pass-word-1234", role=Role.YOUNG_PERSON)
            co = User.objects.create_user(f"benchco{i}", "pass-word-1234", role=Role.COUNSELLOR, display_name=f"C{i}")
            pairs.append((token_issue(user=yp)[1], token_issue(user=co)[1]))
        db = connection.settings_dict
        env = dict(os.environ, DATABASE_URL=f"postgres://{db['USER'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{test_db}",
                   PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING")
        connection.close()
        urls = []
        for _ in range(args.servers):
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            wait_http(url + "/healthz")
        result = asyncio.run(run(urls, pairs, args.messages))

        from chat.models import Message

        lost = 0
        for conv in result["conversations"]:
            seqs = list(Message.objects.filter(conversation_id=conv).order_by("seq").values_list("seq", flat=True))
            assert seqs == list(range(1, len(seqs) + 1)), f"gap in conversation {conv}"
            lost += args.messages - Message.objects.filter(conversation_id=conv, kind="text", seq__gt=1).count()
        d = [x * 1000 for x in result["delivery"]]
        a = [x * 1000 for x in result["acks"]]
        n = len(d)
        print(f"chat delivery through {args.servers} Daphne + channels_redis + PostgreSQL")
        print(f"conversations={args.conversations} messages/conversation={args.messages} delivered={n} lost={lost}")
        print(f"delivery latency ms: p50={pct(d, 0.5):.1f} p99={pct(d, 0.99):.1f} mean={statistics.mean(d):.1f} max={max(d):.1f}")
        print(f"ack latency ms:      p50={pct(a, 0.5):.1f} p99={pct(a, 0.99):.1f}")
        print(f"throughput: {n / result['wall']:.0f} messages/s over {result['wall']:.1f}s")
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        connection.creation.destroy_test_db(test_db, verbosity=0)
        redis.Redis.from_url(settings.REDIS_URL).flushdb()


if __name__ == "__main__":
    main()
