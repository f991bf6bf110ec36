"""Shared fixtures.

Two paths run the same suite:
- quick (`pytest`): SQLite, in-memory channel layer, Celery eager;
- real (`make test`, `.ci/run`): DATABASE_URL/REDIS_URL point at local PostgreSQL and
  Redis, so websocket tests run on channels_redis, and tests marked `real` start a
  Celery worker process (and Daphne processes) against the same test database.
With EARLYHELP_REQUIRE_REAL=1 (set by `make test`) a missing service fails the run
instead of skipping, so CI cannot go green on fakes alone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from rest_framework.test import APIClient

import config.asgi  # noqa: F401  get_asgi_application() re-runs logging setup: do it before any caplog
from accounts.models import Role, User
from accounts.tokens import token_issue

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = (b"origin", b"http://localhost")
REQUIRE_REAL = os.environ.get("EARLYHELP_REQUIRE_REAL") == "1"


def real_services_available() -> bool:
    return bool(settings.REDIS_URL) and settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def require_real() -> None:
    if real_services_available():
        return
    if REQUIRE_REAL:
        pytest.fail("EARLYHELP_REQUIRE_REAL=1 but DATABASE_URL (PostgreSQL) / REDIS_URL are not set")
    pytest.skip("needs PostgreSQL and Redis: run `make test`")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "real" in item.keywords:
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.fixture(autouse=True)
def _real_guard(request):
    if "real" in request.keywords:
        require_real()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """A new channel-layer instance per test: channels_redis keeps asyncio locks and pools
    per instance, and each async test runs on its own event loop."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _close_loop_connections():
    """Each async test runs on its own event loop: close the connections the send path
    opened on it (config/loopdb.py), or the test database could not be dropped at the end."""
    from config import loopdb

    yield
    loopdb.close_all()


@pytest.fixture(scope="session", autouse=True)
def _end_stray_db_sessions(django_db_setup, django_db_blocker):
    """Set up after the test database and torn down before it is dropped: end the sessions
    still on it, or DROP DATABASE fails and pytest-django leaves test_test behind with only a
    warning. They are idle Django connections held by worker threads of this process's thread
    pools (two at the end of a full run, last used for a token lookup and a content-type
    query): Django keeps a connection per thread, and the main thread cannot close another
    thread's, so the server ends them."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


# --- users, tokens, clients -------------------------------------------------------
_counter = iter(range(1, 10**9))


@pytest.fixture
def make_user(db):
    def make(role: str = Role.YOUNG_PERSON, handle: str | None = None, password: str = "pass-word-1234", **extra) -> User:
        n = next(_counter)
        handle = handle or f"{role.replace('_', '')}{n}"
        if role == Role.YOUNG_PERSON:
            extra.setdefault("birth_year", 2010)
            extra.setdefault("birth_month", 1)
        else:
            extra.setdefault("display_name", f"{role.title()} {n}")
        user = User(handle=handle, role=role, **extra)
        user.set_password(password)
        user.save()
        return user

    return make


@pytest.fixture
def token_for(db):
    def issue(user: User) -> str:
        return token_issue(user=user)[1]

    return issue


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def client_for(token_for):
    """An APIClient authenticated as `user` with a bearer token."""

    def make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        return client

    return make


@pytest.fixture
def young(make_user):
    return make_user(Role.YOUNG_PERSON)


@pytest.fixture
def counsellor(make_user):
    return make_user(Role.COUNSELLOR)


# --- websockets -----------------------------------------------------------------------
def asgi_app():
    from config.asgi import application

    return application


async def ws_open(token: str | None = None, *, subprotocol_token: bool = False, headers=None) -> WebsocketCommunicator:
    """Open /ws/ and, when a token is given, authenticate with an `auth` frame (or the
    `Sec-WebSocket-Protocol` header with subprotocol_token=True). Asserts auth.ok."""
    subprotocols = ["earlyhelp.v1", f"token.{token}"] if (token and subprotocol_token) else None
    comm = WebsocketCommunicator(asgi_app(), "/ws/", headers=headers or [ORIGIN], subprotocols=subprotocols)
    connected, _ = await comm.connect()
    assert connected
    if token and not subprotocol_token:
        await comm.send_json_to({"type": "auth", "token": token})
    if token:
        reply = await comm.receive_json_from(timeout=5)
        assert reply["type"] == "auth.ok", reply
    return comm


async def ws_receive_until(comm: WebsocketCommunicator, frame_type: str, timeout: float = 5) -> dict:
    """Frames until one of `frame_type` (others are discarded)."""
    return await frames_until(lambda remaining: comm.receive_json_from(timeout=remaining), frame_type, timeout)


async def frames_until(read, frame_type: str, timeout: float, skipped: list[dict] | None = None) -> dict:
    """The first frame of `frame_type` that `read(remaining_seconds)` returns within
    `timeout`; the frames before it go to `skipped` if given, else are discarded."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {frame_type} frame within {timeout}s")
        frame = await read(remaining)
        if frame.get("type") == frame_type:
            return frame
        if skipped is not None:
            skipped.append(frame)


@pytest.fixture
def capture_events(monkeypatch):
    """Records every channel-layer push made through config.realtime (after commit)."""
    from config import realtime

    sent: list[tuple[str, dict]] = []
    original = realtime.send_now

    def record(groups, payload, **kwargs):
        groups = list(groups)
        for group in groups:
            sent.append((group, payload))
        original(groups, payload, **kwargs)

    monkeypatch.setattr(realtime, "send_now", record)
    return sent


# --- real processes: Celery worker, Daphne ----------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env() -> dict[str, str]:
    """Environment for child processes: same settings, same *test* database."""
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=f"postgres://{db['USER'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        EARLYHELP_TEST_EAGER="0",
        WS_LAYER_WATCH_S="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _die_with_parent() -> None:
    """Children (Daphne, Celery) get SIGTERM if pytest itself is killed, so an aborted run
    leaves no process holding the test database open (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


@contextmanager
def _spawn(cmd: list[str], log_name: str, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    log_dir = ROOT / "var" / "test-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / log_name, "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_die_with_parent)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.close()


class CeleryWorker:
    """A real `celery worker` process on the Redis broker; can be killed and restarted."""

    def __init__(self, queues: str = "default,triage,crisis,moderation") -> None:
        self.queues = queues
        self._cm = None
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queues, "-c", "2",
               "--pool", "prefork", "-l", "INFO", "--without-gossip", "--without-mingle", "-n", f"test{os.getpid()}-{self.starts}@%h"]
        self._cm = _spawn(cmd, f"celery-{self.starts}.log", process_env())
        self.proc = self._cm.__enter__()
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("celery worker exited; see var/test-logs/")
            if app.control.ping(timeout=0.5):
                return
        raise RuntimeError("celery worker did not answer a ping in time")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self._cm:
            self._cm.__exit__(None, None, None)
            self._cm = None

    def stop(self) -> None:
        if self._cm:
            self._cm.__exit__(None, None, None)
            self._cm = None


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker process; in this process tasks are sent to the broker."""
    require_real()
    from config.celery import app

    app.conf.task_always_eager = False
    worker = CeleryWorker()
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER


@pytest.fixture
def daphne_servers(transactional_db):
    """Factory: start N Daphne processes sharing channels_redis and PostgreSQL.
    Returns their base URLs (http://127.0.0.1:PORT)."""
    require_real()
    stack = []

    def start(n: int = 1) -> list[str]:
        urls = []
        for _ in range(n):
            port = _free_port()
            cmd = [sys.executable, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port),
                   "--websocket-max-message-size", str(1024 * 1024), "config.asgi:application"]
            cm = _spawn(cmd, f"daphne-{port}.log", process_env())
            cm.__enter__()
            stack.append(cm)
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            _wait_http(url + "/healthz")
        return urls

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (loopback)
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")
