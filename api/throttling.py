"""DRF's throttles on one cache backend per process.

DRF's throttles use `django.core.cache.cache`, which under ASGI is a new backend
instance per request context: on Redis a new connection pool, so a TCP connect, for
every REST request. These keep DRF's behaviour and go through config.counters'
process-wide backend instead.
"""

from __future__ import annotations

from typing import Any

from rest_framework import throttling

from config.counters import process_cache


class _ProcessCache:
    def __getattr__(self, name: str) -> Any:
        return getattr(process_cache(), name)


class AnonRateThrottle(throttling.AnonRateThrottle):
    cache = _ProcessCache()


class UserRateThrottle(throttling.UserRateThrottle):
    cache = _ProcessCache()


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    cache = _ProcessCache()
