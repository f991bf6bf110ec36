"""Garbage-collector settings for the ASGI server process (issue 7: tail latency).

CPython's cyclic collector stops the whole process while it runs. With the default
thresholds (700, 10, 10) a Daphne process holding 2,000 sockets ran a full (generation 2)
collection every few seconds under chat load, each a 145-270 ms pause over ~450,000 objects
(measured with gc.callbacks at steady_1000, docs/benchmarks.md): every frame in flight
waited, which was most of the delivery p99. Two changes:

- `gc.freeze()` once the application is loaded: the ~135,000 objects of Django, the apps
  and their modules live as long as the process, so the collector stops scanning them.
- A first-generation threshold of ASGI_GC_GEN0_THRESHOLD (50,000) instead of 700: a chat
  message's objects are freed by reference counting within milliseconds, so with a larger
  window few of them are still alive when a collection runs. They are then not promoted to
  the older generations, whose growth is what triggers the full collections. Cyclic garbage
  is still collected, just in fewer, larger passes (a few MB at most in between).
"""

from __future__ import annotations

import gc


def tune_for_server(*, gen0_threshold: int) -> None:
    """Call once, after the ASGI application is built. gen0_threshold <= 0 leaves Python's
    defaults (the freeze still applies)."""
    gc.collect()  # so that what is frozen is live, not garbage that would never be freed
    gc.freeze()
    if gen0_threshold > 0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)
