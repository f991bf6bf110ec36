"""Small async helpers for driving the chat protocol over WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from channels.db import database_sync_to_async

from tests.conftest import frames_until, ws_open


class Peer:
    """One authenticated socket for one user.

    Frames that arrived while `say` waited for its ack (the sender's own message.new may
    come first: api.consumers.ClientConsumer.dispatch) are kept for the next reads."""

    def __init__(self, user, comm):
        self.user = user
        self.comm = comm
        self.backlog: list[dict] = []

    async def _next(self, timeout: float) -> dict:
        if self.backlog:
            return self.backlog.pop(0)
        return await self.comm.receive_json_from(timeout=timeout)

    @classmethod
    async def open(cls, user, token_for) -> Peer:
        token = await database_sync_to_async(token_for)(user)
        comm = await ws_open(token)
        peer = cls(user, comm)
        await peer.recv("chat.state")
        return peer

    async def send(self, **frame: Any) -> None:
        await self.comm.send_json_to(frame)

    async def send_raw(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def recv(self, frame_type: str, timeout: float = 5) -> dict:
        """Frames until one of `frame_type` (others are discarded)."""
        return await self._first(frame_type, timeout)

    async def _first(self, frame_type: str, timeout: float, skipped: list[dict] | None = None) -> dict:
        """The first frame of `frame_type`, the backlog read first; see frames_until."""
        return await frames_until(self._next, frame_type, timeout, skipped)

    async def until(self, frame_type: str, predicate, timeout: float = 10) -> dict:
        """The first `frame_type` frame for which predicate(frame) holds (others discarded)."""
        async def wait():
            while True:
                frame = await self.recv(frame_type, timeout)
                if predicate(frame):
                    return frame

        return await asyncio.wait_for(wait(), timeout)

    async def collect(self, count: int, types: tuple[str, ...], timeout: float = 10) -> list[dict]:
        """The next `count` frames whose type is in `types`, in arrival order."""
        frames: list[dict] = []

        async def wait():
            while len(frames) < count:
                frame = await self._next(timeout)
                if frame.get("type") in types:
                    frames.append(frame)

        await asyncio.wait_for(wait(), timeout)
        return frames

    async def call(self, reply_type: str, **frame: Any) -> dict:
        await self.send(**frame)
        return await self.recv(reply_type)

    async def error(self, **frame: Any) -> dict:
        await self.send(**frame)
        return await self.recv("error")

    async def say(self, conversation: int, body: str, cmid: str | None = None, timeout: float = 5) -> dict:
        """Send a message and return its ack; what arrived before the ack stays to be read."""
        await self.send(type="message.send", conversation=conversation, client_msg_id=cmid or str(uuid.uuid4()),
                        body=body)
        before: list[dict] = []
        ack = await self._first("message.ack", timeout, before)
        self.backlog[:0] = before
        return ack

    async def drain(self, timeout: float = 0.3) -> list[dict]:
        """Everything that arrives within `timeout` (to prove what did NOT arrive)."""
        # receive_nothing does not cancel the app on timeout (receive_output would).
        frames, self.backlog = self.backlog, []
        while not await self.comm.receive_nothing(timeout=timeout):
            out = await self.comm.receive_output()
            if out.get("type") == "websocket.send":
                frames.append(json.loads(out["text"]))
        return frames

    async def close(self) -> None:
        await self.comm.disconnect()


async def make(make_user, role: str, **extra):
    return await database_sync_to_async(make_user)(role, **extra)


async def chat_pair(make_user, token_for, body="I need to talk about school"):
    """A young person and a counsellor in an active session: (young person, counsellor,
    conversation id); the request's body is seq 1, the assignment's system message seq 2."""
    from accounts.models import Role

    yp = await Peer.open(await make(make_user, Role.YOUNG_PERSON), token_for)
    co = await Peer.open(await make(make_user, Role.COUNSELLOR), token_for)
    queued = await yp.call("session.queued", type="session.request", topic="t", body=body)
    await co.call("counsellor.status", type="counsellor.status", status="available")
    await co.send(type="session.accept")
    await co.recv("session.assigned")
    await yp.recv("session.assigned")
    return yp, co, queued["conversation"]


def sent_text(query: Any) -> str:
    """A query as the event loop's send path hands it to psycopg (bytes, its parameters
    already quoted: config.loopdb.execute_statements), as text for assertions; a prepared
    statement's `EXECUTE loopdb_N(...)` reads as that statement's text followed by its
    arguments, so assertions can look for FOR UPDATE, INSERT and COMMIT either way."""
    from config import loopdb

    text = query.decode() if isinstance(query, bytes) else str(query)
    texts = {name.decode(): sql for sql, name in loopdb._prepared_names.items()}
    return re.sub(r"EXECUTE (loopdb_\d+)\(", lambda m: f"{texts[m.group(1)]} (", text)


def is_prepare(query: Any) -> bool:
    """Whether a query is execute_statements' round trip that prepares statements."""
    return sent_text(query).startswith("PREPARE ")
