"""Fixed-window counters in the shared cache (rate limits, login lockouts).

On Redis one counter bump is one round trip (a Lua INCR that sets the expiry on first
use) instead of Django's add + exists + incr (three): the chat rate limit runs on every
message. It goes through one backend instance per process: Django hands out cache
backends per async context, so under ASGI `caches["default"]` is a new instance (with a
new connection pool, so a new TCP connection) for nearly every websocket frame. Other
cache backends (LocMem in the embedded defaults) use the portable path.
"""

from __future__ import annotations

import os

from django.core.cache import cache, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache

_INCR_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
_process: dict[int, tuple[RedisCache, object] | None] = {}  # pid -> (backend, script), None if not Redis
_backends: dict[int, BaseCache] = {}  # pid -> the process's default cache backend


def process_cache() -> BaseCache:
    """The default cache backend, one instance (one connection pool) per process; also
    used by the REST throttles (api/throttling.py)."""
    pid = os.getpid()  # a forked worker must not share its parent's sockets
    backend = _backends.get(pid)
    if backend is None:
        backend = _backends[pid] = caches.create_connection("default")
    return backend


def _redis_counter() -> tuple[RedisCache, object] | None:
    pid = os.getpid()
    if pid not in _process:
        backend = process_cache()
        if isinstance(backend, RedisCache):
            client = backend._cache.get_client(write=True)
            _process[pid] = (backend, client.register_script(_INCR_LUA))
        else:
            _process[pid] = None
    return _process[pid]


def counter_incr(key: str, timeout: int) -> int:
    """Add one to `key` (created with `timeout` seconds to live) and return the count."""
    redis_counter = _redis_counter()
    if redis_counter is not None:
        backend, script = redis_counter
        return int(script(keys=[backend.make_key(key)], args=[int(timeout)]))
    if cache.add(key, 1, timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout)
        return 1
