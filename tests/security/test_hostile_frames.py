"""S1: a flood of malformed frames against a real Daphne process.

100,000 malformed frames over 200 connections (bad JSON, deep nesting, binary, wrong
shapes, unknown types, oversize): no process restart, no unhandled exception in the
server log, RSS growth < 50 MB, and valid traffic keeps flowing during and after.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time

import pytest
import websockets

from tests.conftest import ROOT

pytestmark = [pytest.mark.real, pytest.mark.timeout(300)]

CONNECTIONS, PER_CONNECTION, WAVE = 200, 500, 10


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _daphne_pid(port: int) -> int:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        joined = b" ".join(cmd)  # `python -m config.serve` (tests/conftest.py) or plain daphne
        if (b"config.serve" in joined or b"daphne" in joined) and str(port).encode() in cmd:
            return int(pid)
    raise RuntimeError("daphne process not found")


def _bad_frames(rng: random.Random) -> list[str | bytes]:
    deep = "[" * 20000 + "]" * 20000
    return [
        "{not json",
        "",
        "null",
        "[1,2,3]",
        '{"type": 5}',
        '{"type": "no.such.frame"}',
        '{"type": "message.send"}',
        '{"type": "message.send", "conversation": "x", "client_msg_id": [], "body": {}}',
        '{"type": "escalation.acknowledge", "escalation": 1}',
        deep,
        '{"a":' * 5000 + "1" + "}" * 5000,
        b"\xff\xfe\x00binary",
        json.dumps({"type": "ping", "pad": "x" * 70_000}),
        "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace") * 10,
        json.dumps({"type": "sync", "conversation": 2**70, "after_seq": -1}),
    ]


async def _flood(url: str, token: str, frames: list, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    sent = answered = 0
    async with websockets.connect(url, origin="http://127.0.0.1", subprotocols=["earlyhelp.v1", f"token.{token}"],
                                  max_size=2**22) as ws:
        assert json.loads(await ws.recv())["type"] == "auth.ok"

        async def reader():
            nonlocal answered
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "error":
                    answered += 1
                    if answered >= PER_CONNECTION:
                        return

        task = asyncio.create_task(reader())
        for _ in range(PER_CONNECTION):
            await ws.send(rng.choice(frames))
            sent += 1
        await asyncio.wait_for(task, 120)
    return sent, answered


async def _valid_traffic(url: str, token: str, stop: asyncio.Event) -> list[float]:
    rtts = []
    async with websockets.connect(url, origin="http://127.0.0.1", subprotocols=["earlyhelp.v1", f"token.{token}"]) as ws:
        assert json.loads(await ws.recv())["type"] == "auth.ok"
        while not stop.is_set():
            t0 = time.perf_counter()
            await ws.send(json.dumps({"type": "ping", "ref": "v"}))
            while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("type") != "pong":
                pass
            rtts.append(time.perf_counter() - t0)
            await asyncio.sleep(0.05)
    return rtts


def test_malformed_frame_flood(make_user, token_for, daphne_servers, monkeypatch):
    # Per-socket rate limiting would answer most frames with `rate_limited` before they
    # are parsed; lift it here so every frame reaches the parser and the dispatcher.
    monkeypatch.setenv("WS_RATE_PER_S", "1000000")
    monkeypatch.setenv("WS_RATE_BURST", "1000000")
    (base,) = daphne_servers(1)
    port = int(base.rsplit(":", 1)[1])
    url = f"ws://127.0.0.1:{port}/ws/"
    users = [make_user() for _ in range(20)]
    tokens = [token_for(u) for u in users]
    pid = _daphne_pid(port)
    frames = _bad_frames(random.Random(1))

    async def run():
        # Warm up with one full wave so the baseline includes imported modules, pools
        # and the allocator's high-water mark for WAVE busy sockets; the growth measured
        # after that is what a long-running server would keep (a leak), not a first touch.
        await asyncio.gather(*(_flood(url, tokens[i % len(tokens)], frames, 10_000 + i) for i in range(WAVE)))
        before = _rss_mb(pid)
        stop = asyncio.Event()
        valid = asyncio.create_task(_valid_traffic(url, tokens[1], stop))
        t0 = time.perf_counter()
        results = []
        for batch in range(0, CONNECTIONS, WAVE):  # WAVE concurrent connections at a time
            results += await asyncio.gather(*(_flood(url, tokens[i % len(tokens)], frames, i) for i in range(batch, batch + WAVE)))
        elapsed = time.perf_counter() - t0
        stop.set()
        rtts = await valid
        return before, _rss_mb(pid), results, elapsed, rtts

    before, after, results, elapsed, rtts = asyncio.run(run())
    sent = sum(s for s, _ in results)
    answered = sum(a for _, a in results)
    log = (ROOT / "var" / "test-logs" / f"daphne-{port}.log").read_text(errors="replace")
    assert sent == CONNECTIONS * PER_CONNECTION == 100_000
    assert answered == sent, "every malformed frame gets an explicit error"
    assert _daphne_pid(port) == pid, "no process restart"
    assert "Traceback" not in log and "Exception inside application" not in log
    assert after - before < 50, f"RSS grew {after - before:.1f} MB"
    assert len(rtts) > 10 and max(rtts) < 30
    rtts.sort()
    print(
        f"\nS1: {sent} malformed frames over {CONNECTIONS} connections in {elapsed:.1f}s "
        f"({sent / elapsed:.0f} frames/s); RSS {before:.1f} -> {after:.1f} MB (+{after - before:.1f}); "
        f"valid pings during flood: {len(rtts)}, p50 {rtts[len(rtts) // 2] * 1000:.1f} ms, max {rtts[-1] * 1000:.0f} ms"
    )
