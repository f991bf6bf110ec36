"""The load client's own garbage collector.

Latency is measured in this process, from each message's scheduled time to the frame's
arrival here, so a pause of this process counts as server latency. With Python's default
thresholds the client, holding 2,000 sockets and a record per message, paused 19-62 ms in
its collections during steady_1000 (measured with these callbacks). The harness therefore
does for the client what config/gc_tuning.py does for the server: freeze what exists once
the sockets are up, and collect the young generation every 50,000 allocations instead of
700. Every collection's pause is recorded and reported with the scenario (`client_gc`),
so a remaining client pause is visible, not mistaken for the server's.
"""

from __future__ import annotations

import gc
import time

GEN0_THRESHOLD = 50_000


class ClientGc:
    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, ms)
        self._started: float | None = None
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.pauses.append((info["generation"], (time.perf_counter() - self._started) * 1000))
            self._started = None

    def quiet(self) -> None:
        """Call once the sockets are connected, a second or two before load starts (the
        full collection here takes ~0.2 s with 2,000 sockets)."""
        gc.collect()
        gc.freeze()
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)

    def take(self) -> dict:
        """The collections since the last take: how many, per generation, and the longest."""
        pauses, self.pauses = self.pauses, []
        return {
            "collections": len(pauses),
            "by_generation": {g: sum(1 for gen, _ in pauses if gen == g) for g in (0, 1, 2)},
            "max_ms": round(max((ms for _, ms in pauses), default=0.0), 1),
            "total_ms": round(sum(ms for _, ms in pauses), 1),
        }
