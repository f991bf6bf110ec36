"""The product's pub/sub layer (config.layers) on real Redis: a group push reaching
several sockets of one process is decrypted and unpacked once, and each socket gets
its own copy of the message."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings


@pytest.mark.real
def test_a_group_push_is_decoded_once_per_process(monkeypatch):
    if settings.CHANNEL_LAYER != "pubsub":
        pytest.skip("pub/sub layer only")
    layer = get_channel_layer()
    decodes = []
    original = RedisPubSubChannelLayer.deserialize

    def counting(self, message):
        decodes.append(message)
        return original(self, message)

    monkeypatch.setattr(RedisPubSubChannelLayer, "deserialize", counting)

    async def scenario() -> list[dict]:
        channels = [await layer.new_channel() for _ in range(5)]
        for channel in channels:
            await layer.group_add("decode.once", channel)
        await layer.group_send("decode.once", {"type": "client.event", "text": '{"type":"x"}'})
        received = [await layer.receive(channel) for channel in channels]
        for channel in channels:
            await layer.group_discard("decode.once", channel)
        return received

    received = async_to_sync(scenario)()
    assert [m["text"] for m in received] == ['{"type":"x"}'] * 5
    assert len(decodes) == 1
    received[0]["text"] = "changed"  # one socket's copy is its own
    assert received[1]["text"] == '{"type":"x"}'


def _pubsub_layer():
    if settings.CHANNEL_LAYER != "pubsub":
        pytest.skip("pub/sub layer only")
    return get_channel_layer()


def _count_round_trips(monkeypatch) -> list[int]:
    """The number of publishes in each pipeline the layer sends."""
    from redis.asyncio.client import Pipeline

    sizes: list[int] = []
    original = Pipeline.execute

    async def counting(self, *args, **kwargs):
        sizes.append(len(self.command_stack))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counting)
    return sizes


@pytest.mark.real
def test_pushes_queued_meanwhile_share_a_round_trip_in_order(monkeypatch):
    """config/layers.py: publishes made while one is in flight go out together, in order,
    and every subscriber gets every push."""
    import asyncio

    layer = _pubsub_layer()
    sizes = _count_round_trips(monkeypatch)

    async def scenario() -> tuple[list[int], list[int]]:
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("batch.a", a)
        await layer.group_add("batch.b", b)
        sends = [layer.group_send("batch.a" if i % 2 else "batch.b", {"type": "client.event", "n": i}) for i in range(20)]
        await asyncio.gather(*sends)
        await layer.group_send_many([("batch.a", {"type": "client.event", "n": 20}),
                                     ("batch.b", {"type": "client.event", "n": 21})])
        got_a = [(await layer.receive(a))["n"] for _ in range(11)]
        got_b = [(await layer.receive(b))["n"] for _ in range(11)]
        await layer.group_discard("batch.a", a)
        await layer.group_discard("batch.b", b)
        return got_a, got_b

    got_a, got_b = async_to_sync(scenario)()
    assert got_a == [*range(1, 20, 2), 20]
    assert got_b == [*range(0, 20, 2), 21]
    assert sum(sizes) == 22
    assert len(sizes) < 20  # the concurrent sends shared round trips
    assert sizes[-1] == 2  # group_send_many: one round trip for both


@pytest.mark.real
def test_a_failed_round_trip_fails_each_of_its_pushes_and_the_next_works(monkeypatch):
    from redis.asyncio.client import Pipeline
    from redis.exceptions import ConnectionError as RedisConnectionError

    layer = _pubsub_layer()
    original = Pipeline.execute
    failures = [1]

    async def failing_once(self, *args, **kwargs):
        if failures:
            failures.pop()
            raise RedisConnectionError("down")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", failing_once)

    async def scenario() -> dict:
        channel = await layer.new_channel()
        await layer.group_add("batch.fail", channel)
        with pytest.raises(RedisConnectionError):
            await layer.group_send_many([("batch.fail", {"type": "client.event", "n": 1}),
                                         ("batch.fail", {"type": "client.event", "n": 2})])
        await layer.group_send("batch.fail", {"type": "client.event", "n": 3})
        received = await layer.receive(channel)
        await layer.group_discard("batch.fail", channel)
        return received

    assert async_to_sync(scenario)()["n"] == 3


@pytest.mark.real
def test_a_cancelled_sender_does_not_strand_the_pushes_behind_it():
    import asyncio

    layer = _pubsub_layer()

    async def scenario() -> list[int]:
        channel = await layer.new_channel()
        await layer.group_add("batch.cancel", channel)
        first = asyncio.ensure_future(layer.group_send("batch.cancel", {"type": "client.event", "n": 1}))
        second = asyncio.ensure_future(layer.group_send("batch.cancel", {"type": "client.event", "n": 2}))
        await asyncio.sleep(0)
        first.cancel()  # a socket closing while its push is in flight
        await asyncio.wait_for(second, 5)
        got = []
        while True:
            try:
                got.append((await asyncio.wait_for(layer.receive(channel), 0.5))["n"])
            except TimeoutError:
                break
        await layer.group_discard("batch.cancel", channel)
        return got

    assert 2 in async_to_sync(scenario)()


# --- shutdown: a socket's clean-up cut short -----------------------------------------
@pytest.mark.real
def test_a_clean_up_cancelled_again_by_the_shutdown_is_one_info_line(caplog):
    """A socket's receive, cancelled, unsubscribes its channel; when the server stops, the
    socket's task is cancelled again while that unsubscribe waits for the shard's lock.
    channels_redis logs that as an ERROR with a traceback; the product logs one INFO line."""
    import asyncio
    import logging

    from config.logging_filters import CancelledUnsubscribe

    layer = _pubsub_layer()

    async def scenario() -> None:
        channel = await layer.new_channel()
        receiving = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.05)  # waiting for a push
        shard = layer._get_layer()._get_shard(channel)
        async with shard._lock:  # the unsubscribe waits, as behind the other sockets' at shutdown
            receiving.cancel()
            await asyncio.sleep(0.05)  # in the clean-up now, waiting for the lock
            receiving.cancel()  # the server stopping cancels the socket's task again
            with pytest.raises(asyncio.CancelledError):
                await receiving

    caplog.set_level(logging.INFO, logger="channels_redis.pubsub")
    async_to_sync(scenario)()
    records = [r for r in caplog.records if r.name == "channels_redis.pubsub"]
    assert [(r.levelno, r.getMessage(), r.exc_info) for r in records] == [
        (logging.INFO, CancelledUnsubscribe.MESSAGE, None)]


def test_any_other_failure_of_the_clean_up_stays_an_error(caplog):
    import logging

    log = logging.getLogger("channels_redis.pubsub")
    try:
        raise ConnectionError("Redis went away")
    except ConnectionError:
        log.exception("Unexpected exception while cleaning-up channel:")
    (record,) = [r for r in caplog.records if r.name == "channels_redis.pubsub"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and "Redis went away" in str(record.exc_info[1])


def test_a_cancellation_logged_by_another_part_of_the_layer_stays_an_error(caplog):
    import asyncio
    import logging

    log = logging.getLogger("channels_redis.pubsub")
    try:
        raise asyncio.CancelledError
    except asyncio.CancelledError:
        log.exception("Unexpected exception in receive task")
    (record,) = [r for r in caplog.records if r.name == "channels_redis.pubsub"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "Unexpected exception in receive task" and record.exc_info is not None


# --- sealing (AES-256-GCM-SIV) ----------------------------------------------------------
def test_a_sealed_payload_opens_with_any_configured_key_and_nothing_else():
    from config.layers import AesGcmSivCrypter, InvalidPayload

    old, new = AesGcmSivCrypter(["old-secret"]), AesGcmSivCrypter(["new-secret", "old-secret"])
    sealed = old.encrypt(b"chat text")
    assert b"chat text" not in sealed
    assert new.decrypt(sealed) == b"chat text"  # rotation: the new list still opens the old key's pushes
    assert old.encrypt(b"chat text") != sealed  # a fresh nonce every time
    with pytest.raises(InvalidPayload):
        AesGcmSivCrypter(["another-secret"]).decrypt(sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(InvalidPayload):
        old.decrypt(tampered)
    for junk in (b"", b"\x01short", b"gAAAAA-a-fernet-token" * 3):
        with pytest.raises(InvalidPayload):
            old.decrypt(junk)
    with pytest.raises(ValueError):
        AesGcmSivCrypter("one-string-is-not-a-list")


@pytest.mark.real
def test_what_crosses_redis_is_sealed_and_a_foreign_push_is_refused():
    import asyncio

    import redis.asyncio as aioredis

    from config.layers import InvalidPayload

    layer = _pubsub_layer()

    async def scenario() -> tuple[bytes, dict]:
        channel = await layer.new_channel()
        await layer.group_add("sealed", channel)
        group_channel = layer._get_layer()._get_group_channel_name("sealed")
        spy = aioredis.from_url(settings.REDIS_URL)
        pubsub = spy.pubsub()
        await pubsub.subscribe(group_channel)
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        await layer.group_send("sealed", {"type": "client.event", "text": "I feel unsafe tonight"})
        wire = (await pubsub.get_message(timeout=2))["data"]
        received = await asyncio.wait_for(layer.receive(channel), 2)
        await spy.publish(group_channel, b"\x01" + b"0" * 40)  # not sealed with our key
        with pytest.raises(InvalidPayload):
            await asyncio.wait_for(layer.receive(channel), 2)
        await pubsub.aclose()
        await spy.aclose()
        await layer.group_discard("sealed", channel)
        return wire, received

    wire, received = async_to_sync(scenario)()
    assert received["text"] == "I feel unsafe tonight"
    assert b"unsafe" not in wire


def test_a_socket_drops_a_push_it_cannot_open_and_keeps_receiving():
    from api.consumers import ClientConsumer
    from config.layers import InvalidPayload

    consumer = ClientConsumer()
    results = iter([InvalidPayload("no key opens this channel-layer payload"), {"type": "client.event", "text": "x"}])

    async def reader():
        item = next(results)
        if isinstance(item, Exception):
            raise item
        return item

    consumer.channel_receive = reader
    assert async_to_sync(consumer.channel_receive)() == {"type": "client.event", "text": "x"}
