"""Settings for the processes the harness starts: production settings (the real
configuration: PostgreSQL, channels_redis, Redis cache, Celery on Redis) with the
benchmark's deliberate changes, each driven by an environment variable the harness sets:

- CHAT_MESSAGE_RATE (per-user message limit) is raised (BENCH_CHAT_MESSAGE_RATE), because
  the capacity ladder sends several messages per second per user; the per-socket frame
  limit is raised with the existing WS_RATE_PER_S / WS_RATE_BURST env vars;
- BENCH_CHANNEL_LAYER=pubsub switches to channels_redis' RedisPubSubChannelLayer (an
  option to compare; the product default stays RedisChannelLayer);
- the DRF user throttle is raised for the forum burst (THROTTLE_USER env var).
"""

import os

from config.settings.production import *  # noqa: F403
from config.settings.production import CHANNEL_LAYERS

CHAT_MESSAGE_RATE = int(os.environ.get("BENCH_CHAT_MESSAGE_RATE", "1000000"))

if os.environ.get("BENCH_CHANNEL_LAYER") == "pubsub":
    _cfg = CHANNEL_LAYERS["default"]["CONFIG"]
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": _cfg["hosts"], "symmetric_encryption_keys": _cfg["symmetric_encryption_keys"]},
        }
    }
