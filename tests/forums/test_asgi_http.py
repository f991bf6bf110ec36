"""REST through the real ASGI application (not Django's test client): a request's pushes
are sent from the event loop after the response (config.realtime.SendPushesFromLoop),
and requests beyond HTTP_CONCURRENCY wait their turn instead of failing."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator

from tests.conftest import ORIGIN, asgi_app, real_services_available, ws_open, ws_receive_until

pytestmark = [pytest.mark.django_db(transaction=True)]


def _post(path: str, token: str, body: dict) -> HttpCommunicator:
    data = json.dumps(body).encode()
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json"), ORIGIN,
               (b"host", b"localhost"), (b"content-length", str(len(data)).encode())]
    return HttpCommunicator(asgi_app(), "POST", path, body=data, headers=headers)


async def test_a_reply_over_asgi_pushes_to_the_thread_author(make_user, token_for, make_board, post_thread, settings):
    settings.HTTP_CONCURRENCY = 2
    author, replier = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    thread = await database_sync_to_async(post_thread)(author, await database_sync_to_async(make_board)("post"))
    author_socket = await ws_open(await database_sync_to_async(token_for)(author))
    token = await database_sync_to_async(token_for)(replier)
    path = f"/api/v1/forums/threads/{thread['id']}/posts/"
    requests = [_post(path, token, {"body": f"you are not alone {i}"}).get_response(timeout=20) for i in range(5)]
    if real_services_available():  # more at once than HTTP_CONCURRENCY: all answered
        responses = await asyncio.gather(*requests)
    else:  # the quick path's in-memory SQLite locks whole tables across connections
        responses = [await r for r in requests]
    assert [r["status"] for r in responses] == [201] * 5, responses[0]["body"][:300]
    notification = await ws_receive_until(author_socket, "notification")
    assert notification["kind"] == "reply" and notification["thread_id"] == thread["id"]
    await author_socket.disconnect()
