"""Baseline for bench/run.py: a bare Channels echo consumer on the same server and the
same channel layer configuration (channels_redis, encryption on) as the product, with no
database, no authentication lookup and no triage (dispatching like the product: no
per-message database clean-up hop). The project's cost is then a ratio
against this. Not part of the product's routing.

Token subprotocol `token.echo-<user_id>-<conversation>[-<role>]`. `message.send` is acknowledged
to the sender and sent as `message.new` to the conversation's group (both participants
join it), exactly the frame shapes the load generator expects.
"""

import asyncio
import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.harness.settings")

import django  # noqa: E402

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from api.consumers import TRANSIENT_LAYER_ERRORS, NoConnectionHopDispatch  # noqa: E402


class EchoConsumer(NoConnectionHopDispatch, AsyncWebsocketConsumer):
    # redis-py 8's asyncio default socket_timeout (5 s) equals channels_redis' BZPOPMIN
    # timeout (5 s), so an idle layer read can time out; the product's consumer retries
    # such transient errors (api/consumers.py), and so must the baseline or it dies.
    @property
    def channel_receive(self):
        return self._retrying_receive

    @channel_receive.setter
    def channel_receive(self, reader) -> None:
        self._raw_receive = reader

    async def _retrying_receive(self):
        while True:
            try:
                return await self._raw_receive()
            except TRANSIENT_LAYER_ERRORS:
                await asyncio.sleep(0.05)

    async def connect(self) -> None:
        offered = self.scope.get("subprotocols") or []
        token = next((p[len("token."):] for p in offered if p.startswith("token.echo-")), None)
        if token is None:
            await self.close(code=4401)
            return
        # echo-<user>-<conversation>[-<role>]: the role only matters to the floor baseline.
        _, uid, conv, *role = token.split("-")
        self.uid, self.conv, self.role = int(uid), int(conv), (role or [None])[0]
        self.group = f"conv.{self.conv}"
        await self.accept(subprotocol="earlyhelp.v1")
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send(text_data=json.dumps({"type": "auth.ok", "user": {"id": self.uid}}))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        frame = json.loads(text_data)
        if frame.get("type") == "sync":  # nothing stored: an empty page
            await self.send(text_data=json.dumps({"type": "sync.result", "conversation": self.conv, "messages": [],
                                                  "last_seq": 0, "has_more": False}))
            return
        if frame.get("type") != "message.send":
            await self.send(text_data=json.dumps({"type": "error", "code": "unknown_type", "ref": frame.get("ref")}))
            return
        cmid = frame["client_msg_id"]
        await self.send(text_data=json.dumps({"type": "message.ack", "client_msg_id": cmid, "conversation": self.conv}))
        payload = {"type": "message.new", "conversation": self.conv, "sender": self.uid, "client_msg_id": cmid,
                   "body": frame["body"], "kind": "text"}
        await self.channel_layer.group_send(self.group, {"type": "client.event", "payload": payload})

    async def client_event(self, event) -> None:
        await self.send(text_data=json.dumps(event["payload"], separators=(",", ":")))


async def http_app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


application = ProtocolTypeRouter({"http": http_app, "websocket": URLRouter([path("ws/", EchoConsumer.as_asgi())])})
