"""Logout and deactivation close open sockets; cookie sessions authenticate the web client."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from accounts.services import user_deactivate
from tests.conftest import ORIGIN, ws_open

pytestmark = [pytest.mark.django_db(transaction=True)]


async def _wait_close(comm, timeout=5):
    frames = []
    while True:
        out = await comm.receive_output(timeout=timeout)
        if out["type"] == "websocket.close":
            return out, frames
        frames.append(out)


async def test_logout_closes_the_users_open_sockets(make_user, client_for):
    user = await database_sync_to_async(make_user)()
    client = await database_sync_to_async(client_for)(user)
    token = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    comm = await ws_open(token)
    resp = await database_sync_to_async(client.post)("/api/v1/auth/logout/")
    assert resp.status_code == 204
    closed, frames = await _wait_close(comm)
    assert closed["code"] == 4401
    assert any('"auth.revoked"' in f.get("text", "") for f in frames)
    # The token no longer opens a socket.
    from channels.testing import WebsocketCommunicator

    from tests.conftest import asgi_app

    again = WebsocketCommunicator(asgi_app(), "/ws/", headers=[ORIGIN])
    await again.connect()
    await again.send_json_to({"type": "auth", "token": token})
    assert (await again.receive_json_from())["code"] == "authentication_failed"


async def test_deactivation_closes_sockets(make_user, token_for):
    user = await database_sync_to_async(make_user)()
    comm = await ws_open(await database_sync_to_async(token_for)(user))
    await database_sync_to_async(user_deactivate)(user=user)
    closed, _ = await _wait_close(comm)
    assert closed["code"] == 4401


async def test_revalidation_closes_socket_whose_token_was_revoked_silently(make_user, token_for, settings):
    """If the close push is lost (Redis blip), the periodic re-check still closes it."""
    from accounts.models import AuthToken

    settings.WS_REVALIDATE_S = 0.2
    user = await database_sync_to_async(make_user)()
    comm = await ws_open(await database_sync_to_async(token_for)(user))
    await database_sync_to_async(AuthToken.objects.filter(user=user).update)(revoked_at="2026-01-01T00:00:00Z")
    closed, _ = await _wait_close(comm)
    assert closed["code"] == 4401


async def test_cookie_session_authenticates_the_web_client(make_user):
    user = await database_sync_to_async(make_user)(handle="web_user", password="pass-word-1234")
    http = Client()
    resp = await database_sync_to_async(http.post)(
        "/api/v1/auth/login/", {"handle": "web_user", "password": "pass-word-1234", "session": True}, content_type="application/json"
    )
    assert resp.status_code == 200
    cookie = http.cookies["sessionid"].value
    from channels.testing import WebsocketCommunicator

    from tests.conftest import asgi_app

    comm = WebsocketCommunicator(asgi_app(), "/ws/", headers=[ORIGIN, (b"cookie", f"sessionid={cookie}".encode())])
    assert (await comm.connect())[0]
    reply = await comm.receive_json_from()
    assert reply["type"] == "auth.ok" and reply["user"]["id"] == user.id
    await comm.disconnect()


async def test_unauthenticated_socket_is_closed_after_the_auth_deadline(settings):
    from channels.testing import WebsocketCommunicator

    from tests.conftest import asgi_app

    settings.WS_AUTH_TIMEOUT_S = 0.2
    comm = WebsocketCommunicator(asgi_app(), "/ws/", headers=[ORIGIN])
    await comm.connect()
    closed, frames = await _wait_close(comm)
    assert closed["code"] == 4408
