"""The cost of one chat message on the server, measured in one process (issue 7's profile).

Runs the real consumer (`config.asgi` websocket route) through Channels'
`WebsocketCommunicator` with the production configuration — PostgreSQL, channels_redis on a
private redis-server, the Redis cache — and sends N `message.send` frames from a young
person, one at a time, each waiting for its `message.ack` and the counsellor's
`message.new`. Prints per message: wall time, CPU time of this process, SQL statements
and Redis commands (from the private server's commandstats). With `--profile`, py-spy
records this process while it runs (collapsed stacks, all threads).

    .venv/bin/python bench/hotpath.py -n 500
    .venv/bin/python bench/hotpath.py -n 500 --profile /tmp/hot.collapsed
    .venv/bin/python bench/hotpath.py -n 500 --role counsellor   # staff messages (no triage)
    .venv/bin/python bench/hotpath.py -n 500 --db-delay-ms 0.5     # a network to the database
    .venv/bin/python bench/hotpath.py -n 4000 --concurrency 32     # 32 conversations at once
                                                                   # (sends share transactions)

It is a cost meter, not a load test: latency under load is bench/run.py's job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.stack import free_port  # noqa: E402
from config.serve import EVENT_LOOPS, install_event_loop  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _redis_calls(port: int) -> dict[str, int]:
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "commandstats"], capture_output=True, text=True).stdout
    calls = {}
    for line in out.splitlines():
        if line.startswith("cmdstat_") and not line.startswith("cmdstat_info"):
            calls[line[8:].split(":")[0]] = int(line.split("calls=")[1].split(",")[0])
    return calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=300, help="messages to send")
    ap.add_argument("--role", choices=["young_person", "counsellor"], default="young_person", help="who sends")
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--event-loop", choices=EVENT_LOOPS, default=EVENT_LOOPS[0],
                    help="the event loop the consumer runs on (config/serve.py)")
    ap.add_argument("--profile", metavar="FILE", help="py-spy collapsed stacks of this process during the sends")
    ap.add_argument("--db-delay-ms", type=float, metavar="MS",
                    help="reach PostgreSQL through a proxy that holds each chunk MS in each direction (a network "
                         "between the application and its database; bench/harness/netdelay.py)")
    ap.add_argument("--concurrency", type=int, default=1, metavar="K",
                    help="K conversations, each sending one message at a time, all at once: under load the "
                         "event loop's sends share transactions (chat.services._GroupCommit), which one at a "
                         "time never do; -n is the total")
    args = ap.parse_args()

    import psycopg

    proxy = None
    if args.db_delay_ms is not None:
        host, _, pg_port = args.pg.rpartition(":")
        proxy_port = free_port()
        proxy = subprocess.Popen([sys.executable, "-m", "bench.harness.netdelay", str(proxy_port), pg_port,
                                  str(args.db_delay_ms)], cwd=ROOT)
        args.pg = f"{host}:{proxy_port}"
        time.sleep(0.5)

    db = args.db = f"hotpath_{os.getpid()}"
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL)
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.harness.settings", DATABASE_URL=f"{args.pg}/{db}",
        REDIS_URL=f"redis://127.0.0.1:{port}/0", DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="127.0.0.1,localhost", SECURE_SSL_REDIRECT="0", WS_RATE_PER_S="100000", WS_RATE_BURST="100000",
        LOG_LEVEL="WARNING", TRIAGE_MODEL_DISPATCH=os.environ.get("TRIAGE_MODEL_DISPATCH", "1"),
    )
    try:
        time.sleep(0.3)
        install_event_loop(args.event_loop)
        asyncio.run(_run(args, port))
    finally:
        redis.terminate()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if proxy is not None:
            proxy.terminate()


async def _run(args, port: int) -> None:
    import django

    django.setup()
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.core.management import call_command

    from config.asgi import application

    await database_sync_to_async(call_command)("migrate", "--noinput", verbosity=0)
    pairs = await database_sync_to_async(_setup)(args.concurrency)
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    chats = []  # (sender, receiver, conversation) per pair
    all_socks = []
    for pair in pairs:
        socks = {}
        for name, token in (("young_person", pair.yp_token), ("counsellor", pair.co_token)):
            ws = WebsocketCommunicator(application, "/ws/", headers=headers,
                                       subprotocols=["earlyhelp.v1", f"token.{token}"])
            connected, _ = await ws.connect()
            assert connected
            socks[name] = ws
        chats.append((socks[args.role], socks["counsellor" if args.role == "young_person" else "young_person"],
                      pair.conversation))
        all_socks += socks.values()
    await asyncio.sleep(0.5)
    for ws in all_socks:  # connect-time frames (auth.ok, chat.state, ...)
        while not await ws.receive_nothing(0.05):
            await ws.receive_from()

    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    # Handlers run in the event loop's thread pool, each thread with its own connection
    # wrapper: attach the counter to every connection as it is opened, in any thread.
    from django.db.backends.signals import connection_created

    def attach(sender, connection, **kwargs):
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    connection_created.connect(attach, weak=False)

    # The send path on the event loop (config/loopdb.py) bypasses Django's cursors: count
    # its executes, each one round trip to the server.
    import psycopg

    loop_trips = [0]
    loop_execute = psycopg.AsyncClientCursor.execute

    async def count_loop(self, query, params=None, **kwargs):
        loop_trips[0] += 1
        return await loop_execute(self, query, params, **kwargs)

    psycopg.AsyncClientCursor.execute = count_loop

    async def one(i: int, chat) -> None:
        sender, receiver, conversation = chat
        cmid = str(uuid.uuid4())
        await sender.send_to(text_data=json.dumps({"type": "message.send", "conversation": conversation,
                                                   "client_msg_id": cmid, "body": f"message {i}: how are you today"}))
        acked = delivered = False
        while not (acked and delivered):
            if not acked:
                frame = json.loads(await sender.receive_from(10))
                acked = frame.get("type") == "message.ack" and frame.get("client_msg_id") == cmid
            if not delivered:
                frame = json.loads(await receiver.receive_from(10))
                delivered = frame.get("type") == "message.new" and frame.get("client_msg_id") == cmid

    async def sends(count: int) -> None:
        async def each(chat, share: int) -> None:
            for i in range(share):
                await one(i, chat)

        k = len(chats)
        await asyncio.gather(*(each(chat, count // k + (j < count % k)) for j, chat in enumerate(chats)))

    await sends(20 * len(chats))  # warm-up
    round_trip_ms = await database_sync_to_async(_round_trip_ms)()
    spy = None
    if args.profile:
        spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(os.getpid()),
                                "--rate", "250", "--format", "raw", "--nonblocking", "--gil", "-o", args.profile],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(1.0)
    pg0 = await asyncio.to_thread(_pg_backends_cpu, args.pg, args.db)
    q0, l0, r0, c0, t0 = queries[0], loop_trips[0], _redis_calls(port), _cpu(), time.perf_counter()
    await sends(args.n)
    t1, c1 = time.perf_counter(), _cpu()
    q1, l1, r1 = queries[0], loop_trips[0], _redis_calls(port)
    pg1 = await asyncio.to_thread(_pg_backends_cpu, args.pg, args.db)
    if spy:
        spy.send_signal(2)
        spy.wait(30)
    n = args.n
    print(json.dumps({
        "messages": n, "sender": args.role, "concurrency": len(chats),
        "wall_ms_per_msg": round((t1 - t0) * 1000 / n, 3),
        "cpu_ms_per_msg": round((c1 - c0) * 1000 / n, 3),
        # The database's side, on the same host: its backends for this database (a backend
        # that ended during the sends is missed; none does in a run this short).
        "pg_backends_cpu_ms_per_msg": round(sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()) * 1000 / n, 3),
        "sql_per_msg": round((q1 - q0) / n, 2),  # through Django's cursors
        "loop_db_round_trips_per_msg": round((l1 - l0) / n, 2),  # the send path on the event loop
        "db_round_trip_ms": round(round_trip_ms, 3),
        "redis_cmds_per_msg": round(sum(r1.values()) - sum(r0.values())) / n,
        "redis_by_command": {k: round((v - r0.get(k, 0)) / n, 2) for k, v in sorted(r1.items()) if v != r0.get(k, 0)},
    }, indent=1))
    for ws in all_socks:
        await ws.disconnect()


def _pg_backends_cpu(pg: str, db: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to `db` (from /proc, so only
    where the server runs on this host)."""
    import psycopg

    from bench.harness.procstat import cpu_seconds

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        pids = [row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [db])]
    return {pid: cpu_seconds(pid) for pid in pids}


def _round_trip_ms() -> float:
    """One `SELECT 1` on the application's database connection, median of 50 (the network's
    share of each statement; with --db-delay-ms, what the proxy really adds)."""
    from django.db import connection

    times = []
    with connection.cursor() as cursor:
        for _ in range(50):
            t = time.perf_counter()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            times.append((time.perf_counter() - t) * 1000)
    return sorted(times)[len(times) // 2]


def _setup(k: int) -> list:
    from bench.harness.data import sessions_create

    return sessions_create(f"hot{secrets.token_hex(2)}", k)


if __name__ == "__main__":
    main()
