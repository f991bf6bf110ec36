"""Start and stop the real stack on loopback: a fresh PostgreSQL database, a private
redis-server, Celery workers (crisis queue separate from triage/moderation), Celery beat
and N ASGI processes (Daphne by default, uvicorn as an option), each optionally pinned to
a core with taskset. Every child runs in its own process group and is killed on exit;
the database is dropped."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Layout:
    """Which cores each part runs on (None: not pinned)."""

    def __init__(self, pin: bool) -> None:
        ncpu = os.cpu_count() or 1
        self.pin = pin and ncpu >= 2
        self.asgi = "0" if self.pin else None
        self.client = "1" if self.pin else None
        self.workers = "1" if self.pin else None  # celery, beat, redis: with the client
        self.redis = None  # floats: pinned behind the model worker it starved (read timeouts)
        # The bench database's backends (never the shared server's other processes) join the
        # workers' core, so the ASGI core runs the ASGI server alone and its figures are the
        # server's. Left floating, the scheduler put nearly all of them on the ASGI core (the
        # other one is kept busy by the model worker at idle priority).
        self.postgres = "1" if self.pin else None

    def describe(self) -> dict:
        return {"pinned": self.pin, "asgi": self.asgi, "client": self.client, "celery_and_beat": self.workers,
                "redis": self.redis,
                "postgresql": f"bench database's backends on core {self.postgres}" if self.postgres
                else "not pinned (shared server)"}


def _asgi_prefix(group: str | None) -> str:
    """The process names of an ASGI group ("asgi-<group>-<i>"), or of all ASGI processes."""
    return f"asgi-{group}-" if group else "asgi-"


def _taskset(cores: str | None, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cores, *cmd] if cores else cmd


class Stack:
    def __init__(self, *, run_dir: Path, layout: Layout, layer: str = "pubsub", pg_url: str = "postgres://postgres@127.0.0.1:5432") -> None:
        self.run_dir = run_dir
        self.layout = layout
        self.layer = layer
        self.pg_url = pg_url.rstrip("/")
        self.db_name = f"bench_{os.getpid()}_{int(time.time())}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: list = []
        self.asgi_urls: list[str] = []
        self.redis_port = free_port()
        self._pinner_stop = threading.Event()
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="bench.harness.settings",
            DATABASE_URL=f"{self.pg_url}/{self.db_name}",
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECURE_SSL_REDIRECT="0",
            WS_RATE_PER_S="1000",
            WS_RATE_BURST="1000",
            THROTTLE_USER="1000000/min",
            CHANNEL_LAYER=layer,
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT),
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
        )

    # --- lifecycle -------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str], cores: str | None, env: dict | None = None, log_name: str | None = None) -> subprocess.Popen:
        log = open(self.run_dir / f"{log_name or name}.log", "wb")  # noqa: SIM115
        self.logs.append(log)
        proc = subprocess.Popen(_taskset(cores, cmd), cwd=ROOT, env=env or self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def _stop(self, name: str, timeout: float = 10) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def start_backend(self, *, celery: bool = True) -> None:
        import psycopg

        with psycopg.connect(f"{self.pg_url}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self._spawn("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
                              "--appendonly", "no", "--maxclients", "20000"], self.layout.redis)
        deadline = time.monotonic() + 10
        while True:
            out = subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True, text=True).stdout
            if out.strip() == "PONG":
                break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env, check=True)
        if self.layout.postgres:
            threading.Thread(target=self._pin_postgres, args=(self.layout.postgres,), name="pg-pinner", daemon=True).start()
        if celery:
            self.start_celery()

    def start_celery(self) -> None:
        common = ["--pool", "prefork", "-l", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        # Crisis notifications never wait behind the ML model: their own worker.
        self._spawn("celery-crisis", [PY, "-m", "celery", "-A", "config", "worker", "-Q", "crisis,default", "-c", "1",
                                      "-n", f"crisis{os.getpid()}@%h", *common], self.layout.workers)
        self._spawn("celery-triage", [PY, "-m", "celery", "-A", "config", "worker", "-Q", "triage,moderation", "-c", "1",
                                      "-n", f"triage{os.getpid()}@%h", *common], self.layout.workers)
        self._spawn("celery-beat", [PY, "-m", "celery", "-A", "config", "beat", "-l", "WARNING",
                                    "-s", str(self.run_dir / "beat-schedule"), "--pidfile", ""], self.layout.workers)

    def start_asgi(self, *, n: int = 1, server: str = "daphne", app: str = "config.asgi:application", tag: str = "",
                   group: str = "") -> list[str]:
        """Start n ASGI processes on the ASGI core. Without `group`, any running ones are
        stopped first; with it, those of other groups keep running (--interleave: the
        ladders' servers side by side, one of them under load at a time)."""
        self.stop_asgi(group or None)
        self.asgi_urls = []
        # ASGI_EVENT_LOOP may list one loop per process (uvloop,asyncio): both on the same
        # core under the same load, a comparison this machine's drift cannot skew.
        loops = self.env.get("ASGI_EVENT_LOOP", "uvloop").split(",")
        for i in range(n):
            port = free_port()
            env = dict(self.env, ASGI_EVENT_LOOP=loops[i % len(loops)])
            if server == "uvicorn":
                cmd = [PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--ws", "websockets",
                       "--lifespan", "off", "--no-access-log", "--log-level", "warning", "--ws-ping-interval", "0",
                       "--loop", env["ASGI_EVENT_LOOP"]]
            else:
                # config.serve: Daphne's own command line, on the event loop ASGI_EVENT_LOOP names.
                cmd = [PY, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port), "--websocket_timeout", "86400",
                       "--websocket-max-message-size", str(1024 * 1024), app]
            self._spawn(f"{_asgi_prefix(group)}{i}", cmd, self.layout.asgi, env=env, log_name=f"{tag or 'asgi'}-asgi-{i}")
            self.asgi_urls.append(f"http://127.0.0.1:{port}")
        for url in self.asgi_urls:
            self._wait_http(url + "/healthz", app)
        return self.asgi_urls

    def _wait_http(self, url: str, app: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{url} ({app}) did not come up; see {self.run_dir}")

    def stop_asgi(self, group: str | None = None) -> None:
        """Stop the ASGI processes of `group`, or all of them."""
        for name in [n for n in self.procs if n.startswith(_asgi_prefix(group))]:
            self._stop(name)

    def asgi_pids(self, group: str | None = None) -> list[int]:
        return [p.pid for n, p in self.procs.items() if n.startswith(_asgi_prefix(group))]

    def pids(self, prefix: str) -> list[int]:
        from .procstat import tree

        out = []
        for n, p in self.procs.items():
            if n.startswith(prefix):
                out.extend(tree(p.pid))
        return out

    def postgres_pids(self) -> list[int]:
        """Backends connected to the bench database (server processes not ours: shared)."""
        import psycopg

        try:
            with psycopg.connect(f"{self.pg_url}/postgres", autocommit=True) as conn:
                return self._backend_pids(conn)
        except Exception:
            return []

    def _backend_pids(self, conn) -> list[int]:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.db_name,)).fetchall()
        return [r[0] for r in rows]

    def _pin_postgres(self, cores: str, every_s: float = 0.25) -> None:
        """Pin each new backend of the bench database (connections open on demand) to `cores`."""
        import psycopg

        want = {int(c) for c in cores.split(",")}
        done: set[int] = set()
        while not self._pinner_stop.is_set():
            try:  # one connection for the whole run: a new one per poll would fork a backend each time
                with psycopg.connect(f"{self.pg_url}/postgres", autocommit=True) as conn:
                    while not self._pinner_stop.wait(every_s):
                        for pid in set(self._backend_pids(conn)) - done:
                            with contextlib.suppress(OSError):  # gone already
                                os.sched_setaffinity(pid, want)
                                done.add(pid)
            except psycopg.Error:
                self._pinner_stop.wait(1)

    def flush_redis_queues(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "-n", "0", "DEL", "triage", "moderation"],
                       capture_output=True)

    def redis_queue_len(self, name: str) -> int:
        out = subprocess.run(["redis-cli", "-p", str(self.redis_port), "LLEN", name], capture_output=True, text=True).stdout
        try:
            return int(out.strip())
        except ValueError:
            return -1

    def stop(self) -> None:
        self._pinner_stop.set()
        for name in list(self.procs):
            if name != "redis":
                self._stop(name)
        self._stop("redis")
        for log in self.logs:
            log.close()
        self.logs = []
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with contextlib.suppress(Exception):
            import psycopg

            with psycopg.connect(f"{self.pg_url}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
