"""The /ws/ authentication and framing contract."""

import json

import pytest
from channels.testing import WebsocketCommunicator

from tests.conftest import ORIGIN, asgi_app, ws_open, ws_receive_until

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_auth_frame_gives_auth_ok(young, token_for):
    token = await _token(token_for, young)
    comm = await ws_open(token)
    await comm.send_json_to({"type": "ping", "ref": "p1"})
    assert await ws_receive_until(comm, "pong") == {"type": "pong", "ref": "p1"}
    await comm.disconnect()


async def test_subprotocol_token(young, token_for):
    token = await _token(token_for, young)
    comm = await ws_open(token, subprotocol_token=True)
    await comm.disconnect()


async def test_bad_token_gets_error_and_close():
    comm = WebsocketCommunicator(asgi_app(), "/ws/", headers=[ORIGIN])
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "auth", "token": "nope"})
    reply = await comm.receive_json_from()
    assert reply["type"] == "error" and reply["code"] == "authentication_failed"
    out = await comm.receive_output()
    assert out["type"] == "websocket.close" and out["code"] == 4401


async def test_frames_before_auth_are_refused():
    comm = WebsocketCommunicator(asgi_app(), "/ws/", headers=[ORIGIN])
    await comm.connect()
    await comm.send_json_to({"type": "message.send"})
    reply = await comm.receive_json_from()
    assert reply["code"] == "not_authenticated"
    await comm.disconnect()


async def test_foreign_origin_is_refused():
    comm = WebsocketCommunicator(asgi_app(), "/ws/", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await comm.connect()
    assert not connected


@pytest.mark.parametrize(
    "raw, code",
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"no_type": 1}', "invalid_frame"),
        ('{"type": "no.such.thing"}', "unknown_type"),
        ("[" * 5000 + "]" * 5000, "invalid_json"),
        (json.dumps({"type": "x", "pad": "a" * 70000}), "frame_too_large"),
    ],
)
async def test_bad_frames_get_clear_errors_and_socket_survives(young, token_for, raw, code):
    comm = await ws_open(await _token(token_for, young))
    await comm.send_to(text_data=raw)
    reply = await ws_receive_until(comm, "error")
    assert reply["code"] == code, reply
    await comm.send_json_to({"type": "ping"})
    await ws_receive_until(comm, "pong")
    await comm.disconnect()


async def test_binary_frame_is_refused(young, token_for):
    comm = await ws_open(await _token(token_for, young))
    await comm.send_to(bytes_data=b"\x00\x01")
    assert (await ws_receive_until(comm, "error"))["code"] == "binary_not_supported"
    await comm.disconnect()


async def test_rate_limit_is_explicit(young, token_for, settings):
    settings.WS_RATE_BURST = 4  # the auth frame counts too
    settings.WS_RATE_PER_S = 0.001
    comm = await ws_open(await _token(token_for, young))
    codes = []
    for _ in range(5):
        await comm.send_json_to({"type": "ping"})
        while True:
            frame = await comm.receive_json_from()
            if frame["type"] in ("pong", "error"):
                break
        codes.append(frame.get("code", "pong"))
    assert codes[:3] == ["pong"] * 3 and codes[3:] == ["rate_limited"] * 2
    await comm.disconnect()


async def _token(token_for, user):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(token_for)(user)
