"""The product's channel layer: channels_redis' pub/sub layer, with three changes.

**A group push is decoded once per process.** Redis delivers a group push to a process
once, and the pub/sub layer hands that same payload (bytes) to every subscribed socket of
the process; each socket's `receive` then decrypts and unpacks it again. For a
forum thread watched by 200 sockets that was 200 decryptions per post, and a post burst
spent much of the server's time in them. Here the last few decoded payloads are kept by
their bytes (the same object, so the lookup is a cached hash and an identity compare), and
each socket gets its own shallow copy of the decoded message.

**Group pushes are published in batches.** channels_redis publishes each push on its own,
one round trip each under the shard's lock: every chat message's pushes queued behind every
other message's, and redis-py spent ~110 us of the server's CPU per PUBLISH. Here the
publishes queued while a round trip is in flight go out together in the next one (one
pipeline, in order, no transaction): a chat message's two pushes are one round trip, and
under load many messages' pushes share one. A failed round trip fails every push in it, as
each alone would have failed (callers log and drop; clients resync).

**Payloads are sealed with AES-256-GCM-SIV, not Fernet.** Chat text crosses Redis, so the
layer's payloads stay encrypted and authenticated (`symmetric_encryption_keys`, as
before: the first key seals, any of them opens, for rotation). Fernet's Python glue
(CBC, padding, a separate HMAC, base64) cost ~11 us to seal and ~13 us to open a push;
AES-GCM-SIV is one C call each, ~2-3 us. SIV rather than plain GCM because the nonces are
random and a key lives long: plain GCM must not see a nonce twice (after ~2^32 pushes
under one key the odds stop being negligible, and a repeat leaks the authentication
key), while under GCM-SIV a repeat only shows whether two payloads were identical.
Every process that shares the layer runs this code (ASGI servers and Celery workers
read the same settings), so the format changes for all of them at once; a rolling
deploy mixing versions drops pushes until it finishes (pushes are hints: clients resync).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

DECODED_KEEP = 256
# A round trip carries at most this many publishes; the rest go in the next one.
PUBLISH_BATCH_MAX = 64


class PubSubChannelLayer(RedisPubSubChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keys = kwargs.get("symmetric_encryption_keys")
        if keys:
            # channels_redis' serializer calls crypter.encrypt(data) and
            # crypter.decrypt(token, ttl); replacing its MultiFernet keeps the rest.
            self._serializer.crypter = AesGcmSivCrypter(keys)
        self._decoded: dict[bytes, dict[str, Any]] = {}
        self._publishers: dict[tuple[Any, int], _ShardPublisher] = {}

    def deserialize(self, message: bytes) -> dict[str, Any]:
        decoded = self._decoded.get(message)
        if decoded is None:
            decoded = super().deserialize(message)
            if len(self._decoded) >= DECODED_KEEP:
                self._decoded.clear()  # bounded; a miss only costs one decode
            self._decoded[message] = decoded
        return dict(decoded)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self.group_send_many([(group, message)])

    async def group_send_many(self, sends: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish each (group, message) in order, in as few round trips as the queue
        allows; raises the error of the first failed round trip."""
        loop_layer = self._get_layer()
        futures = []
        for group, message in sends:
            channel = loop_layer._get_group_channel_name(group)
            futures.append(self._publisher(loop_layer._get_shard(channel)).add(channel, self.serialize(message)))
        error: BaseException | None = None
        for future in futures:  # every one awaited, so no failure goes unretrieved
            try:
                await future
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    def _publisher(self, shard: Any) -> _ShardPublisher:
        key = (asyncio.get_running_loop(), id(shard))
        publisher = self._publishers.get(key)
        if publisher is None or publisher.shard is not shard:
            if len(self._publishers) > 64:  # loops come and go in tests; keep this bounded
                self._publishers = {k: p for k, p in self._publishers.items() if not k[0].is_closed()}
            publisher = self._publishers[key] = _ShardPublisher(shard)
        return publisher


class AesGcmSivCrypter:
    """MultiFernet's interface, with AES-256-GCM-SIV: a sealed payload is a version byte, a
    random 96-bit nonce and the ciphertext with its tag. Each key is SHA-256 of the
    configured secret (as channels_redis derives its Fernet keys)."""

    VERSION = b"\x01"

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if isinstance(keys, str | bytes):
            raise ValueError("symmetric_encryption_keys must be a list of possible keys")
        self._aeads = [AESGCMSIV(hashlib.sha256(k.encode() if isinstance(k, str) else k).digest()) for k in keys]

    def encrypt(self, data: bytes) -> bytes:
        nonce = os.urandom(12)
        return self.VERSION + nonce + self._aeads[0].encrypt(nonce, data, None)

    def decrypt(self, token: bytes, ttl: int | None = None) -> bytes:
        # ttl: the pub/sub layer sets no expiry (a push is delivered now or never).
        if token[:1] != self.VERSION or len(token) < 29:
            raise InvalidPayload("not a sealed channel-layer payload")
        nonce, sealed = token[1:13], token[13:]
        for aead in self._aeads:
            try:
                return aead.decrypt(nonce, sealed, None)
            except InvalidTag:
                continue
        raise InvalidPayload("no key opens this channel-layer payload")


class InvalidPayload(ValueError):
    """A push that was not sealed by a key this process holds (or was altered)."""


class _ShardPublisher:
    """One per event loop and shard: a FIFO of publishes drained by one task, each round
    trip taking everything queued so far (up to PUBLISH_BATCH_MAX)."""

    def __init__(self, shard: Any) -> None:
        self.shard = shard
        self.queue: list[tuple[str, bytes, asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    def add(self, channel: str, data: bytes) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.queue.append((channel, data, future))
        if self.task is None or self.task.done():
            # A task of its own, not the caller's: a caller cancelled mid-flight (a socket
            # closing) must not strand the publishes queued behind its own.
            self.task = asyncio.get_running_loop().create_task(self._drain())
        return future

    async def _drain(self) -> None:
        while self.queue:
            batch, self.queue = self.queue[:PUBLISH_BATCH_MAX], self.queue[PUBLISH_BATCH_MAX:]
            try:
                async with self.shard._lock:  # as channels_redis' own publish and subscribe
                    self.shard._ensure_redis()
                    pipe = self.shard._redis.pipeline(transaction=False)
                    for channel, data, _ in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()
            except asyncio.CancelledError:
                for *_, future in batch + self.queue:
                    future.cancel()
                self.queue = []
                raise
            except Exception as exc:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for *_, future in batch:
                    if not future.done():
                        future.set_result(None)
