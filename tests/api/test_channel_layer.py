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
