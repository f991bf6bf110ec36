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

from tests.conftest import ROOT, _free_port, _spawn, process_env


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
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
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
    proc = Proc([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
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
