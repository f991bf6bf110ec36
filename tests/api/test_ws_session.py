"""config.ws_session: the websocket's cookie session, with `send` passed through."""

import pytest
from django.conf import settings

from config.ws_session import WebsocketSessionMiddleware


async def _seen(scope):
    seen = {}

    async def inner(scope, receive, send):
        seen.update(scope=scope, send=send)

    async def send(message):
        pass

    await WebsocketSessionMiddleware(inner)(scope, None, send)
    return seen, send


async def test_scope_gets_the_cookies_session_and_send_is_not_wrapped():
    seen, send = await _seen({"type": "websocket", "cookies": {settings.SESSION_COOKIE_NAME: "k" * 32}})
    assert seen["send"] is send
    assert seen["scope"]["session"].session_key == "k" * 32


async def test_no_cookie_is_an_empty_session():
    seen, _ = await _seen({"type": "websocket", "cookies": {}})
    assert seen["scope"]["session"].session_key is None


@pytest.mark.parametrize("scope", [{"type": "http", "cookies": {}}, {"type": "websocket"}])
async def test_misuse_is_refused(scope):
    with pytest.raises(ValueError):
        await _seen(scope)
