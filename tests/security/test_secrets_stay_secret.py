"""S6: no chat text or tokens in logs; chat text encrypted at rest in Redis."""

from __future__ import annotations

import logging

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from accounts.models import Role
from tests.conftest import ws_open, ws_receive_until

SECRET = "my-secret-words-about-home-7731"


@pytest.mark.real
def test_chat_text_is_encrypted_in_redis():
    """Whatever Redis holds (core layer: queued messages) or carries (pub/sub layer: the
    published payload, read here by a second subscriber) is ciphertext."""
    layer = get_channel_layer()
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["symmetric_encryption_keys"]
    client = redis.Redis.from_url(settings.REDIS_URL)

    async def send_and_inspect() -> list[bytes]:
        channel = await layer.new_channel()
        await layer.group_add("s6.test", channel)
        blobs = []
        if settings.CHANNEL_LAYER == "pubsub":
            spy = client.pubsub(ignore_subscribe_messages=True)
            spy.subscribe(layer._get_layer()._get_group_channel_name("s6.test"))
            await layer.group_send("s6.test", {"type": "client.event", "payload": {"type": "message.new", "body": SECRET}})
            for _ in range(50):
                seen = spy.get_message(timeout=0.1)
                if seen:
                    blobs.append(seen["data"])
                    break
            spy.close()
        else:
            await layer.group_send("s6.test", {"type": "client.event", "payload": {"type": "message.new", "body": SECRET}})
            for key in client.scan_iter(match=f"{layer.prefix}*"):
                kind = client.type(key)
                if kind == b"zset":
                    blobs += client.zrange(key, 0, -1)
                elif kind == b"list":
                    blobs += client.lrange(key, 0, -1)
                elif kind == b"string":
                    blobs.append(client.get(key))
        message = await layer.receive(channel)
        assert message["payload"]["body"] == SECRET  # decrypts for the consumer
        await layer.group_discard("s6.test", channel)
        return blobs

    blobs = async_to_sync(send_and_inspect)()
    assert blobs, "the message should have been seen in Redis"
    assert not any(SECRET.encode() in blob for blob in blobs)


@pytest.mark.django_db(transaction=True)
async def test_no_chat_text_or_tokens_in_logs(caplog, make_user, token_for):
    from channels.db import database_sync_to_async

    from tests.faults import live_session

    caplog.set_level(logging.DEBUG)
    young = await database_sync_to_async(make_user)(Role.YOUNG_PERSON)
    counsellor = await database_sync_to_async(make_user)(Role.COUNSELLOR)
    token = await database_sync_to_async(token_for)(young)

    session = await database_sync_to_async(live_session)(young, counsellor, topic="home", body=SECRET)
    ws = await ws_open(token)
    await ws.send_json_to({"type": "message.send", "conversation": session.conversation_id,
                           "client_msg_id": "3f1b0c9e-0000-4000-8000-000000000001", "body": SECRET + " again"})
    await ws_receive_until(ws, "message.ack")
    await ws.send_json_to({"type": "no.such.type", "body": SECRET})
    await ws_receive_until(ws, "error")
    await ws.disconnect()

    from django.test import Client

    http = Client()
    await database_sync_to_async(http.post)(
        "/api/v1/auth/login/", {"handle": young.handle, "password": "wrong-" + SECRET}, content_type="application/json"
    )
    await database_sync_to_async(http.get)("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    logging.getLogger("api.consumers").warning("capture check")  # proves records are captured
    assert "capture check" in caplog.text
    assert SECRET not in caplog.text
    assert token not in caplog.text
