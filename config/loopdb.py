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

Statements run through `execute`, on a cursor kept per connection and statement text, so
psycopg's adapter context survives from one message to the next (see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import weakref
from collections.abc import AsyncIterator
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

        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
        conn = await psycopg.AsyncConnection.connect(**_connect_params())
        conn.statement_cursors = {}
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


# Statement texts come from a few builders (config/sql.py); this only bounds a surprise.
_CURSORS_PER_CONNECTION = 16


async def execute(conn: Any, sql: str, params: Any = None) -> Any:
    """`conn.cursor().execute(sql, params)` on a cursor kept for this statement text on this
    connection; returns it. Its results stay valid until the same text runs again here.

    psycopg builds a fresh adapter context (its Transformer) for each new cursor and for each
    execute of a query object other than the cursor's last one, and a fresh context looks
    every parameter's type up in Python and makes its dumper again. Quoting the chat path's
    ~42 parameters a message took 95–128 µs with fresh contexts and 70–94 µs with kept ones
    (Zen 4; 54 → 36 µs in a tight loop; docs/benchmarks.md, sixteenth pass). The interned
    text is the same object each time, which is what lets psycopg keep the context."""
    sql = sys.intern(sql)
    cursors = conn.statement_cursors
    cursor = cursors.get(sql)
    if cursor is None:
        if len(cursors) >= _CURSORS_PER_CONNECTION:
            cursors.clear()
        cursor = cursors[sql] = conn.cursor()
    await cursor.execute(sql, params)
    return cursor


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
