"""Async PostgreSQL connections for code that runs on the ASGI event loop.

Django's database layer is synchronous: the websocket consumer runs each frame's handler
in a worker thread (api/consumers.in_thread_pool), and that hop — a thread woken, the GIL
handed over and back, Django's connection checkout, transaction and cursor layers — cost
about as much CPU per chat message as the SQL itself (docs/benchmarks.md). The one path
that runs for every message (chat.services.message_send_on_loop) uses these instead:
psycopg's async driver, with the same connection parameters, adapters and client-side
binding as Django's connections, so the statements Django's helpers build (config/sql.py)
run here unchanged.

Each event loop has its own set (at most CHAT_LOOP_DB_CONNECTIONS), opened only as
concurrent sends need them and kept for reuse. A send holds one for its two round trips and
for the loop's turns between them, which under load are most of the time it holds it: a
pool too small for that, not PostgreSQL, was what capped the chat path (docs/benchmarks.md,
fifteenth pass). Since the twentieth, sends share transactions under load
(chat.services._GroupCommit), and at most CHAT_SEND_TRANSACTIONS of these are busy with them
at once. Connections are in autocommit mode; a caller that opens a transaction
("BEGIN; ...") must end it, and one handed back inside a transaction is rolled back, or
closed if that fails. A connection whose use raised is closed rather than reused. The most
recently used idle one is taken first, so after a peak the extra ones stay unused and are
closed once idle for CHAT_LOOP_DB_MAX_IDLE_S (as psycopg_pool's `max_idle` does for Django's
pool): a quiet ASGI process does not hold its peak's connections to PostgreSQL all night,
and fewer of them are found dead (server restart, idle timeouts) by the next send, which
would hand that send over to the worker-thread path.

Statements run through `execute_statements`, several per round trip, quoted with an adapter
context kept per connection (see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import weakref
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import connections

from config.perloop import per_loop


@functools.cache
def _backend_allows() -> bool:
    """PostgreSQL through psycopg 3 with client-side binding (Django's default), where a
    statement's parameters and several statements per round trip work as on Django's side."""
    db = connections["default"]
    if db.vendor != "postgresql":
        return False
    import psycopg

    return issubclass(db.get_connection_params().get("cursor_factory", object), psycopg.ClientCursor)


def usable() -> bool:
    return bool(getattr(settings, "CHAT_SEND_ON_LOOP", True)) and _backend_allows()


def _connect_params() -> dict[str, Any]:
    import psycopg

    params = connections["default"].get_connection_params()
    params["cursor_factory"] = psycopg.AsyncClientCursor
    params["autocommit"] = True
    # Django sets its connections to UTC; so do these (timestamps read back as Django's).
    params["options"] = f"{params.get('options', '')} -c TimeZone=UTC".strip()
    return params


class _LoopConnections:
    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopConnections] = weakref.WeakKeyDictionary()

    def __init__(self, size: int, max_idle_s: float) -> None:
        self.free = asyncio.Semaphore(size)
        self.idle: list[Any] = []  # most recently used last
        self.max_idle_s = max_idle_s
        self.sweep: asyncio.TimerHandle | None = None

    @classmethod
    def for_loop(cls) -> _LoopConnections:
        return per_loop(cls._by_loop,
                        lambda _: cls(settings.CHAT_LOOP_DB_CONNECTIONS, settings.CHAT_LOOP_DB_MAX_IDLE_S))

    async def take(self) -> Any:
        import psycopg
        from psycopg.adapt import Transformer

        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
        conn = await psycopg.AsyncConnection.connect(**_connect_params())
        # execute_statements' adapter context and cursor, kept for the connection's life.
        conn.literal_context = Transformer.from_context(conn)
        conn.literal_cursor = conn.cursor()
        conn.prepared_names = set()  # the statements prepared on this connection (execute_statements)
        return conn

    async def give(self, conn: Any, *, broken: bool) -> None:
        from psycopg.pq import TransactionStatus

        if not broken and not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            try:
                await conn.execute("ROLLBACK")
            except Exception:
                broken = True
        if broken or conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
            await conn.close()
        else:
            conn.idle_since = asyncio.get_running_loop().time()
            self.idle.append(conn)
            if self.sweep is None and self.max_idle_s > 0:
                self._sweep_in(self.max_idle_s)

    def _sweep_in(self, delay: float) -> None:
        self.sweep = asyncio.get_running_loop().call_later(delay, self._close_stale)

    def _close_stale(self) -> None:
        """Close the connections idle for max_idle_s or longer; come back when the next one
        will be. They are idle (no statement in flight), so closing is the client's own
        socket: finish() without waiting on the server."""
        self.sweep = None
        now = asyncio.get_running_loop().time()
        stale = [conn for conn in self.idle if now - conn.idle_since >= self.max_idle_s]
        for conn in stale:
            conn.pgconn.finish()
        self.idle = [conn for conn in self.idle if conn not in stale]
        if self.idle:
            self._sweep_in(max(0.0, self.idle[0].idle_since + self.max_idle_s - now))


@contextlib.asynccontextmanager
async def connection() -> AsyncIterator[Any]:
    """One of this loop's connections, for the block's duration (waits while all are in
    use). Exceptions from the block propagate. A transaction the block left open is rolled
    back; after a driver error or a cancellation (a statement may be in flight) the
    connection is closed instead, which ends any transaction on the server too."""
    import psycopg

    pool = _LoopConnections.for_loop()
    async with pool.free:
        conn = await pool.take()
        broken = False
        try:
            yield conn
        except (psycopg.Error, asyncio.CancelledError):
            broken = True
            raise
        finally:
            await pool.give(conn, broken=broken)


async def execute_statements(conn: Any, statements: Iterable[tuple[str, Sequence[Any]]]) -> Any:
    """Run `statements` ((text, params) pairs, texts with %s placeholders) in one round trip
    on `conn`, one of this module's connections, as one simple query, each with its
    parameters quoted client-side as psycopg's client-side-binding cursor would quote them;
    returns the cursor, its first result current (nextset() for the next statement's).

    Why not `cursor.execute("; ".join(texts), all_params)`: psycopg splits a text at its
    placeholders again on every execute once it is over 4,096 characters or 50 parameters
    (below that its split is cached), and a group commit's texts (chat.services) are that
    long and differ from one batch to the next: 57-64 µs a message to merge a batch's
    writes that way, against 18-19 µs with each statement's text split once and cached here
    (docs/benchmarks.md, twenty-first pass). Quoting stays psycopg's: a Transformer kept per
    connection, whose dumper for each parameter type is found once (a fresh one looks every
    type up again: the sixteenth pass measured 95-128 against 70-94 µs a message).

    With CHAT_LOOP_DB_PREPARE (the default), a statement with parameters runs as
    `EXECUTE <name>(<quoted parameters>)` of a statement this connection prepared on the
    server (`PREPARE <name> AS <text>`, sent in a round trip of its own the first time the
    connection meets the text): PostgreSQL then parses and plans each text once per
    connection instead of once per message, which was most of its CPU on the chat path —
    the locking read alone took ~0.28 ms to parse, plan and run as text, ~0.08 ms prepared
    (docs/benchmarks.md, twenty-third pass). The parameters are the same quoted literals;
    PostgreSQL coerces them to the types it inferred for the placeholders, as it does for
    the text's. Texts without parameters (BEGIN, COMMIT) run as they are. Prepared
    statements outlive a rollback, and a connection whose use raised is closed
    (`connection`), so what the connection records as prepared is what the server has."""
    literal = conn.literal_context.as_literal
    prepare = settings.CHAT_LOOP_DB_PREPARE
    parts: list[bytes] = []
    missing: dict[bytes, bytes] = {}  # name -> its PREPARE, once however often the batch uses it
    for sql, params in statements:
        quoted = [b"NULL" if p is None else literal(p) for p in params]
        if prepare and params:
            name, definition = _prepared(sql)
            if name not in conn.prepared_names:
                missing[name] = definition
            parts.append(b"EXECUTE %b(%b)" % (name, b", ".join(quoted)))
        else:
            parts.append(_template(sql) % tuple(quoted))
    if missing:
        await conn.literal_cursor.execute(b"; ".join(missing.values()))
        conn.prepared_names.update(missing)
    await conn.literal_cursor.execute(b"; ".join(parts))
    return conn.literal_cursor


@functools.lru_cache(maxsize=256)
def _template(sql: str) -> bytes:
    """`sql` as a bytes %-template: its %s are the placeholders and %% a literal %, which is
    how psycopg reads a client-side-binding text too. Other placeholders (%(name)s, %b, %t)
    are refused: they would mean something else here."""
    if "%" in _PLACEHOLDER_OR_PERCENT.sub("", sql):
        raise ValueError(f"only %s placeholders (and %% for a literal %) are supported: {sql[:80]!r}")
    return sql.encode()


_PLACEHOLDER_OR_PERCENT = re.compile("%[s%]")
_prepared_names: dict[str, bytes] = {}  # text -> its statement's name, the same on every connection


@functools.lru_cache(maxsize=256)
def _prepared(sql: str) -> tuple[bytes, bytes]:
    """The server-side name for `sql` and its `PREPARE name AS ...` (%s read as $1, $2, ...,
    %% as %). Names are numbered in the order texts are first met, once per process."""
    _template(sql)  # the same texts are accepted as unprepared
    name = _prepared_names.setdefault(sql, b"loopdb_%d" % len(_prepared_names))
    numbers = iter(range(1, sql.count("%s") + 1))
    body = _PLACEHOLDER_OR_PERCENT.sub(lambda m: f"${next(numbers)}" if m.group() == "%s" else "%", sql)
    return name, b"PREPARE %b AS %b" % (name, body.encode())


def close_all() -> None:
    """Close every loop's idle connections (tests: each test's event loop ends with its
    connections open, and the test database cannot be dropped while they are)."""
    for pool in list(_LoopConnections._by_loop.values()):
        if pool.sweep is not None:
            pool.sweep.cancel()
        for conn in pool.idle:
            if not conn.closed:
                conn.pgconn.finish()
        pool.idle.clear()
    _LoopConnections._by_loop.clear()
