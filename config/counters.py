"""Fixed-window counters in the shared cache (rate limits, login lockouts).

On Redis one counter bump is one round trip (a Lua INCR that sets the expiry on first
use) instead of Django's add + exists + incr (three): the chat rate limit runs on every
message. Other cache backends (LocMem in the embedded defaults) use the portable path.
"""

from __future__ import annotations

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

_INCR_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
_scripts: dict[int, object] = {}


def counter_incr(key: str, timeout: int) -> int:
    """Add one to `key` (created with `timeout` seconds to live) and return the count."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        full_key = backend.make_key(key)
        client = backend._cache.get_client(full_key, write=True)
        script = _scripts.get(id(client))
        if script is None:
            script = _scripts[id(client)] = client.register_script(_INCR_LUA)
        return int(script(keys=[full_key], args=[int(timeout)]))
    if cache.add(key, 1, timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout)
        return 1
