"""One object per running event loop (pools, batchers, coalescers that hold loop-bound
futures, semaphores or connections), made on first use and dropped with its loop."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def per_loop(registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T],
             make: Callable[[asyncio.AbstractEventLoop], T]) -> T:
    """The running loop's entry in `registry`, made by `make(loop)` the first time."""
    loop = asyncio.get_running_loop()
    found = registry.get(loop)
    if found is None:
        found = registry[loop] = make(loop)
    return found
