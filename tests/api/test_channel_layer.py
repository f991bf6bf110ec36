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
