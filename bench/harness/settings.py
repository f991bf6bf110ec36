"""Settings for the processes the harness starts: production settings (the real
configuration: PostgreSQL, channels_redis, Redis cache, Celery on Redis) with the
benchmark's deliberate changes, each driven by an environment variable the harness sets:

- CHAT_MESSAGE_RATE (per-user message limit) is raised (BENCH_CHAT_MESSAGE_RATE), because
  the capacity ladder sends several messages per second per user; the per-socket frame
  limit is raised with the existing WS_RATE_PER_S / WS_RATE_BURST env vars;
- the channel layer is the product's CHANNEL_LAYER setting (`--layer pubsub|core`);
- the DRF user throttle is raised for the forum burst (THROTTLE_USER env var).
"""

import os

from config.settings.production import *  # noqa: F403

CHAT_MESSAGE_RATE = int(os.environ.get("BENCH_CHAT_MESSAGE_RATE", "1000000"))
