"""TRIAGE_WORKER_NICE: how a `triage`-queue worker lowers its own CPU priority (config/celery.py).
Each case runs in a child process: a priority, once lowered, cannot be raised again.
Printed: is the process's main thread SCHED_IDLE, its niceness, and is the thread the
model runs in (triage.model._in_runner) SCHED_IDLE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import os, logging; logging.basicConfig(); from config.celery import _lower_priority; "
    "_lower_priority({setting!r}); from triage import model; "
    "print(os.sched_getscheduler(0) == os.SCHED_IDLE, os.nice(0), "
    "model._in_runner(os.sched_getscheduler, 0) == os.SCHED_IDLE)"
)


def _run(setting: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    return subprocess.run([sys.executable, "-c", PROBE.format(setting=setting)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=True)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes")
@pytest.mark.parametrize(("setting", "nice", "model_idle"), [("idle", 10, True), ("10", 10, False), ("0", 0, False)])
def test_worker_priority(setting: str, nice: int, model_idle: bool) -> None:
    base = os.nice(0)
    out = _run(setting).stdout.split()
    # The database work stays in the main thread, never SCHED_IDLE: it holds locks.
    assert out == ["False", str(min(19, base + nice)), str(model_idle)]


def test_bad_setting_is_reported_not_fatal() -> None:
    done = _run("fast")
    assert done.stdout.split()[0] == "False" and "TRIAGE_WORKER_NICE='fast' not applied" in done.stderr
