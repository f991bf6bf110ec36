"""Settings for bench/chat_latency.py: the test settings with the per-user and per-socket
message rate limits lifted, so the benchmark measures delivery rather than throttling."""

from config.settings.test import *  # noqa: F403

CHAT_MESSAGE_RATE = 10**9
WS_RATE_PER_S = 10_000.0
WS_RATE_BURST = 10_000
