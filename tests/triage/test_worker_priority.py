"""TRIAGE_WORKER_NICE: how a `triage`-queue worker lowers its own CPU priority (config/celery.py).
Each case runs in a child process: a priority, once lowered, cannot be raised again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import os, logging; logging.basicConfig(); from config.celery import _lower_priority; "
    "_lower_priority({setting!r}); print(os.sched_getscheduler(0) == os.SCHED_IDLE, os.nice(0))"
)


def _run(setting: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    return subprocess.run([sys.executable, "-c", PROBE.format(setting=setting)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=True)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes")
@pytest.mark.parametrize(("setting", "idle", "nice"), [("idle", True, 0), ("10", False, 10), ("0", False, 0)])
def test_worker_priority(setting: str, idle: bool, nice: int) -> None:
    base = os.nice(0)
    out = _run(setting).stdout.split()
    assert out == [str(idle), str(min(19, base + nice))]


def test_bad_setting_is_reported_not_fatal() -> None:
    done = _run("fast")
    assert done.stdout.split()[0] == "False" and "TRIAGE_WORKER_NICE='fast' not applied" in done.stderr
