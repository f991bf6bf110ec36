"""`python -m config.serve`: Daphne's command line on the event loop ASGI_EVENT_LOOP names
(uvloop by default). The Daphne processes of the real-services tests (tests/conftest.py,
tests/faults.py) are started this way, so the chat, escalation and fault paths run on it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from django.conf import settings

from config.serve import install_event_loop

# What Daphne's own loop turns out to be once config.serve has chosen: daphne.server
# creates it on import, which is why the choice cannot wait for the application.
PROBE = ("from config.serve import install_event_loop; chosen = install_event_loop(); "
         "import daphne.server; print(chosen, type(daphne.server.twisted_loop).__module__)")


def _run(code_or_args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *code_or_args], capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}, cwd=settings.BASE_DIR)


def test_daphne_runs_on_uvloop_by_default():
    out = _run(["-c", PROBE])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["uvloop", "uvloop"]


def test_asyncio_keeps_the_standard_library_loop():
    out = _run(["-c", PROBE], ASGI_EVENT_LOOP="asyncio")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["asyncio", "asyncio.unix_events"]


def test_an_unknown_loop_is_a_clear_error_not_a_silent_fallback():
    out = _run(["-m", "config.serve", "-b", "127.0.0.1", "config.asgi:application"], ASGI_EVENT_LOOP="tokio")
    assert out.returncode != 0
    assert "ASGI_EVENT_LOOP must be uvloop or asyncio, not 'tokio'" in out.stderr


def test_the_rest_of_the_command_line_is_daphnes():
    out = _run(["-m", "config.serve", "--help"])
    assert out.returncode == 0, out.stderr
    assert "--websocket-max-message-size" in out.stdout and "application" in out.stdout


def test_asyncio_choice_leaves_the_policy_alone():
    before = asyncio.get_event_loop_policy()
    assert install_event_loop("asyncio") == "asyncio"
    assert asyncio.get_event_loop_policy() is before


def test_the_choice_is_checked():
    with pytest.raises(SystemExit, match="must be uvloop or asyncio"):
        install_event_loop("trio")


# autobahn's per-frame debug lines: their coloured arguments are built only when written.
COLOURING = ("import txaio, autobahn.twisted.websocket; {before}"
             "from config.serve import skip_unwritten_debug_colouring; skipped = skip_unwritten_debug_colouring(); "
             "from autobahn.websocket import protocol; from autobahn.twisted import websocket; "
             "method = protocol.WebSocketProtocol.sendData; "
             "print(skipped, protocol.hltype(method) is method, websocket.hlval(12) == 12)")


def test_unwritten_debug_lines_are_not_coloured():
    out = _run(["-c", COLOURING.format(before="")])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"]


def test_debug_logging_keeps_autobahns_colouring():
    out = _run(["-c", COLOURING.format(before="txaio.set_global_log_level('debug'); ")])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False"]
