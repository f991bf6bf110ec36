"""Second baseline for bench/run.py (`--scenario floor`): the cheapest chat path this stack
allows, so the capacity ladder can say how much of the product's cost is ours.

The bare echo (bench/echo_asgi.py) does no work per message; the product does a great deal.
This consumer does what issue 7 calls the minimum, "persisted, triaged and delivered", in the
cheapest way the fixed stack offers, the architecture docs/benchmarks.md names as the knee
target's precondition:

- the inline triage layer (`triage.engine.assess_inline`, the product's own), on the loop,
  for a young person's message (as the product: staff messages are not triaged);
- one SQL statement per message on an async psycopg connection on the event loop (no thread
  hop, no Django ORM or cursor wrapper, server-side binding, prepared after a few uses),
  committed on its own (autocommit): it takes the conversation's row lock and next seq,
  stores the message (unique per sender and client_msg_id) and, for a young person's, its
  assessment;
- after the commit, the ack to the sender and `message.new` to the conversation's group, on
  the same server and channel layer as the product, in the echo's frames (no seq: the load
  generator would take two senders' publishes crossing for a gap and sync, which the
  baseline cannot answer).

What it leaves out, and the product does: authentication by token lookup, the per-message
authorisation (live participant, session state), the rate limit, the duplicate lookup and
its answer, escalations and crisis resources, the model-layer dispatch, the payload the
product sends (sender role, assessment summary). So its knee is an upper bound for any
implementation of the product's path on this stack and machine, not a design to adopt.

Token subprotocol `token.echo-<user_id>-<conversation>-<role>`, as the echo baseline. Its tables
(`bench_floor_*`) are created in the bench database on first use. Not part of the product.
"""

import asyncio
import json
import os
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.harness.settings")

import django  # noqa: E402

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402
from psycopg_pool import AsyncConnectionPool  # noqa: E402

from bench.echo_asgi import EchoConsumer, http_app  # noqa: E402
from triage.engine import assess_inline  # noqa: E402

SCHEMA = """
SELECT pg_advisory_xact_lock(7007);
CREATE TABLE IF NOT EXISTS bench_floor_conversation (id bigint PRIMARY KEY, last_seq bigint NOT NULL);
CREATE TABLE IF NOT EXISTS bench_floor_message (
    id bigserial PRIMARY KEY, conversation_id bigint NOT NULL REFERENCES bench_floor_conversation (id),
    sender_id bigint NOT NULL, client_msg_id uuid NOT NULL, body text NOT NULL, seq bigint NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now(), UNIQUE (sender_id, client_msg_id), UNIQUE (conversation_id, seq));
CREATE TABLE IF NOT EXISTS bench_floor_assessment (
    message_id bigint PRIMARY KEY REFERENCES bench_floor_message (id), level text NOT NULL, action text NOT NULL,
    score double precision NOT NULL, evidence jsonb NOT NULL);
"""

# The seq, the message and its assessment in one statement, so one round trip and one
# commit. A retried client_msg_id stores nothing (the floor does not answer retries).
_STORE = """
WITH c AS (UPDATE bench_floor_conversation SET last_seq = last_seq + 1 WHERE id = %(conv)s RETURNING last_seq),
m AS (INSERT INTO bench_floor_message (conversation_id, sender_id, client_msg_id, body, seq)
      SELECT %(conv)s, %(sender)s, %(cmid)s, %(body)s, c.last_seq FROM c
      ON CONFLICT (sender_id, client_msg_id) DO NOTHING RETURNING id, seq)
"""
SEND_TRIAGED = _STORE + """INSERT INTO bench_floor_assessment (message_id, level, action, score, evidence)
SELECT m.id, %(level)s, %(action)s, %(score)s, %(evidence)s FROM m RETURNING (SELECT seq FROM m)"""
SEND = _STORE + "SELECT seq FROM m"

_pool = None
_pool_lock = asyncio.Lock()


async def _db():
    """The process's async pool, opened (and the schema created) on first use: it needs the
    running loop, which does not exist when the module is imported."""
    global _pool
    if _pool is not None:
        return _pool
    async with _pool_lock:
        if _pool is None:
            pool = AsyncConnectionPool(os.environ["DATABASE_URL"], min_size=2,
                                       max_size=int(os.environ.get("DB_POOL_MAX", "16")),
                                       kwargs={"autocommit": True}, open=False)
            await pool.open(wait=True)
            async with pool.connection() as conn, conn.transaction():
                await conn.execute(SCHEMA)
            _pool = pool
    return _pool


class FloorConsumer(EchoConsumer):
    async def connect(self) -> None:
        await super().connect()
        if hasattr(self, "conv"):
            pool = await _db()
            async with pool.connection() as conn:
                await conn.execute("INSERT INTO bench_floor_conversation (id, last_seq) VALUES (%s, 0) "
                                   "ON CONFLICT DO NOTHING", [self.conv])

    async def receive(self, text_data=None, bytes_data=None) -> None:
        frame = json.loads(text_data)
        if frame.get("type") != "message.send":
            await super().receive(text_data=text_data)
            return
        cmid, body = frame["client_msg_id"], frame["body"]
        sql, params = SEND, {"conv": self.conv, "sender": self.uid, "cmid": uuid.UUID(str(cmid)), "body": body}
        if self.role == "young_person":
            verdict = assess_inline(body)
            sql = SEND_TRIAGED
            params.update(level=verdict.level, action=verdict.action, score=verdict.score,
                          evidence=Jsonb(verdict.evidence))
        pool = await _db()
        async with pool.connection() as conn:
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
        if row is None:  # a retry: stored before; the floor does not resend it
            await self.send(text_data=json.dumps({"type": "error", "code": "duplicate", "ref": frame.get("ref")}))
            return
        await self.send(text_data=json.dumps({"type": "message.ack", "client_msg_id": cmid, "conversation": self.conv}))
        payload = {"type": "message.new", "conversation": self.conv, "sender": self.uid, "client_msg_id": cmid,
                   "body": body, "kind": "text"}
        await self.channel_layer.group_send(self.group, {"type": "client.event", "payload": payload})


application = ProtocolTypeRouter({"http": http_app, "websocket": URLRouter([path("ws/", FloorConsumer.as_asgi())])})
