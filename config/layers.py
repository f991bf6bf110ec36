"""The product's channel layer: channels_redis' pub/sub layer, decoding a group push once.

Redis delivers a group push to a process once, and the pub/sub layer hands that same
payload (bytes) to every subscribed socket of the process; each socket's `receive` then
decrypts (Fernet) and unpacks it again. For a forum thread watched by 200 sockets that
was 200 decryptions per post, and a post burst spent much of the server's time in them.
Here the last few decoded payloads are kept by their bytes (the same object, so the
lookup is a cached hash and an identity compare), and each socket gets its own shallow
copy of the decoded message.
"""

from __future__ import annotations

from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer

DECODED_KEEP = 256


class PubSubChannelLayer(RedisPubSubChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._decoded: dict[bytes, dict[str, Any]] = {}

    def deserialize(self, message: bytes) -> dict[str, Any]:
        decoded = self._decoded.get(message)
        if decoded is None:
            decoded = super().deserialize(message)
            if len(self._decoded) >= DECODED_KEEP:
                self._decoded.clear()  # bounded; a miss only costs one decode
            self._decoded[message] = decoded
        return dict(decoded)
