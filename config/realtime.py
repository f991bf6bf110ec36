"""The one way services push to sockets: channel-layer group sends after commit.

Every socket joins `user.<id>` (and `role.<role>`) on authentication, so services
address people, not connections. Pushes are wake-up hints: the database is the
record, and clients resync from it (see ../shared/docs/reliability.md). A failed
send is logged and dropped here on purpose; it never breaks the committed work.

A socket also joins `conv.<id>` for each conversation its user is live in (services send
`groups.join` to the user's group when that starts): a chat message is then one publish
to its conversation, not one per participant, carrying each recipient's copy; the socket
forwards the copy listing its user and drops the push otherwise (send_copies_now). Who
receives a message is still decided at its commit, from the participant rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from config.perloop import per_loop

logger = logging.getLogger(__name__)

CLIENT_EVENT = "client.event"  # handled by ClientConsumer.client_event: forwards `text` (or `payload`)
SOCKET_CLOSE = "socket.close"  # handled by ClientConsumer.socket_close
# Handled by ClientConsumer.conversation_event: forwards the text of the copy listing the socket's user.
CONVERSATION_EVENT = "conversation.event"
GROUPS_JOIN = "groups.join"  # handled by ClientConsumer.groups_join / groups_leave: `groups`
GROUPS_LEAVE = "groups.leave"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def role_group(role: str) -> str:
    return f"role.{role}"


def conversation_group(conversation_id: int) -> str:
    return f"conv.{conversation_id}"


def layer_is_pubsub(layer=None) -> bool:
    """Whether the channel layer is channels_redis' pub/sub layer, which keeps group
    memberships in-process (nothing in Redis to rejoin) and a channel subscribed until a
    receive on it is cancelled."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return isinstance(layer or get_channel_layer(), RedisPubSubChannelLayer)


class DeliveryFailed(Exception):
    """The channel layer could not take a push (Redis down). Callers that track
    delivery (escalations) catch it and leave the work to their sweeper."""


def _group_send(group: str, message: dict[str, Any], *, raise_errors: bool = False) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception as exc:  # Redis down: the database still holds the truth; clients resync.
        logger.warning("channel layer send to %s failed: %s", group, type(exc).__name__)
        if raise_errors:
            raise DeliveryFailed(group) from exc


# Pushes collected while a websocket frame is handled (see `collect`), else None.
_collected: contextvars.ContextVar[list[tuple[str, dict[str, Any]]] | None] = contextvars.ContextVar(
    "realtime_collected", default=None
)


@contextlib.contextmanager
def collect() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Within this block (the websocket consumer wraps each frame's handler in it), pushes
    that would go out now are kept, in order, for the caller to `deliver` from its event
    loop: the worker thread makes no round trip back to the loop per group, and a frame's
    pushes go out together. Still after commit: on_commit callbacks add to the list, and a
    rollback discards them as before. Pushes whose failure the caller must see
    (raise_errors) are never collected."""
    pushes: list[tuple[str, dict[str, Any]]] = []
    token = _collected.set(pushes)
    try:
        yield pushes
    finally:
        _collected.reset(token)


async def deliver(pushes: list[tuple[str, dict[str, Any]]]) -> None:
    """Send collected pushes in order. Failures are logged and dropped, as in send_now.
    Pushes marked `coalesce` go through this loop's `_Coalescer`."""
    layer = get_channel_layer()
    if layer is None:
        return
    run: list[tuple[str, dict[str, Any]]] = []  # consecutive plain pushes: one batch
    for group, message in pushes:
        if message.get(COALESCE):
            await _layer_send_many(layer, run)
            run = []
            await _Coalescer.for_loop().add(group, message["text"])
        else:
            run.append((group, message))
    await _layer_send_many(layer, run)


async def _layer_send_many(layer, sends: list[tuple[str, dict[str, Any]]]) -> None:
    """The product's layer publishes a batch in one round trip (config/layers.py); other
    layers (in-memory, the core Redis layer) get the pushes one by one."""
    many = getattr(layer, "group_send_many", None)
    if many is None or len(sends) < 2:
        for group, message in sends:
            await _layer_send(layer, group, message)
        return
    try:
        await many(sends)
    except Exception as exc:
        logger.warning("channel layer send to %s failed: %s", ", ".join(g for g, _ in sends), type(exc).__name__)


async def _layer_send(layer, group: str, message: dict[str, Any]) -> None:
    try:
        await layer.group_send(group, message)
    except Exception as exc:
        logger.warning("channel layer send to %s failed: %s", group, type(exc).__name__)


# Fan-out groups whose pushes may be merged (forum threads and boards, see send_on_commit):
# a quiet group's push goes out at once; after it, the group gets at most one frame per
# window, a `batch` of what came meanwhile, in order. A thread taking 50 posts/s watched by
# 200 sockets was 10,000 frames/s for one server process — past what it can write, so every
# other socket's frames (chat, crisis alerts) queued behind them for seconds.
COALESCE = "coalesce"
COALESCE_WINDOW_S = 0.2


class _Coalescer:
    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Coalescer] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: dict[str, list[str]] = {}
        self.last_sent: dict[str, float] = {}
        self.tasks: set[asyncio.Task] = set()

    @classmethod
    def for_loop(cls) -> _Coalescer:
        return per_loop(cls._by_loop, cls)

    async def add(self, group: str, text: str) -> None:
        now = self.loop.time()
        if group not in self.pending and now - self.last_sent.get(group, float("-inf")) >= COALESCE_WINDOW_S:
            self.last_sent[group] = now
            await self._send(group, text)
            return
        batch = self.pending.get(group)
        if batch is None:
            batch = self.pending[group] = []
            delay = max(0.0, self.last_sent[group] + COALESCE_WINDOW_S - now)
            self.loop.call_later(delay, self._flush_soon, group)
        batch.append(text)

    def _flush_soon(self, group: str) -> None:
        task = self.loop.create_task(self._flush(group))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _flush(self, group: str) -> None:
        texts = self.pending.pop(group, [])
        now = self.last_sent[group] = self.loop.time()
        if len(self.last_sent) > 10_000:  # forget groups that went quiet
            self.last_sent = {g: t for g, t in self.last_sent.items() if now - t < COALESCE_WINDOW_S or g in self.pending}
        if texts:
            await self._send(group, texts[0] if len(texts) == 1 else '{"type":"batch","frames":[' + ",".join(texts) + "]}")

    async def _send(self, group: str, text: str) -> None:
        layer = get_channel_layer()
        if layer is not None:
            await _layer_send(layer, group, {"type": CLIENT_EVENT, "text": text})


class SendPushesFromLoop:
    """ASGI wrapper for HTTP: pushes a request's services make after commit are collected
    (see `collect`) and sent from the event loop once the app has answered. Otherwise each
    one is an async_to_sync hop from the request's thread back to the event loop, which a
    busy process (a forum post fanned out to hundreds of sockets) may not reach for tens
    of milliseconds: three pushes per forum post kept the request, and its place under
    HTTP_CONCURRENCY, waiting that long three times."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The request's sync code runs in a copy of this context: it appends to this list.
        with collect() as pushes:
            try:
                await self.app(scope, receive, send)
            finally:
                await deliver(list(pushes))


def frame_text(payload: dict[str, Any]) -> str:
    """A frame as the sockets send it (compact JSON).

    orjson writes it: ~0.4 µs for a message.new frame against ~5 µs for the standard
    library's encoder, and a chat message makes three frames (its ack and the two sides'
    message.new; docs/benchmarks.md, twenty-seventh pass). The text decodes to the same
    JSON: non-ASCII characters travel as UTF-8 instead of \\u escapes, and datetimes and
    dataclasses still go to `str` (passed through), as they did, and a NaN or infinity (never
    in a frame) is null, where the standard library wrote NaN or Infinity, which is not JSON.
    What orjson refuses (an integer beyond 64 bits, a non-string key, a lone surrogate) is
    written by the standard library as before."""
    try:
        return orjson.dumps(payload, default=str, option=_ORJSON_AS_BEFORE).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(payload, separators=(",", ":"), default=str)


_ORJSON_AS_BEFORE = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def send_now(groups: Iterable[str], payload: dict[str, Any], *, raise_errors: bool = False, coalesce: bool = False) -> None:
    # Serialised once here rather than by every receiving socket: a forum post reaches
    # hundreds of watchers, and the sockets only forward the text.
    _push_each(groups, {"type": CLIENT_EVENT, "text": frame_text(payload)}, raise_errors=raise_errors, coalesce=coalesce)


def _push_each(groups: Iterable[str], message: dict[str, Any], **how: bool) -> None:
    for group in dict.fromkeys(groups):
        _push(group, message, **how)


def _push(group: str, message: dict[str, Any], *, raise_errors: bool = False, coalesce: bool = False) -> None:
    collected = None if raise_errors else _collected.get()
    if collected is not None:
        # Merged (COALESCE) only where an event loop delivers them; elsewhere (Celery
        # workers) pushes are few and go out as they are.
        collected.append((group, {**message, COALESCE: True} if coalesce else message))
    else:
        _group_send(group, message, raise_errors=raise_errors)


def send_copies_now(group: str, copies: Iterable[tuple[Iterable[int], dict[str, Any]]]) -> None:
    """One push to `group` (a conversation's) carrying a copy of a frame per set of users:
    each socket of the group forwards the first copy that lists its user and drops the
    push if none does. One publish, one encryption and one receipt per ASGI process,
    instead of one of each per recipient group (a chat message's two, the young person's
    copy and the staff copy, which adds the risk assessment). A copy equal to an earlier
    one is merged into it, so the frame is serialised once. The recipients are the
    caller's (the live participants at the commit), so a socket still in the group after
    its user stopped being live (transferred out, stopped observing) receives nothing."""
    merged: list[tuple[list[int], dict[str, Any]]] = []
    for user_ids, payload in copies:
        same = next((ids for ids, p in merged if p == payload), None)
        if same is not None:
            same.extend(user_ids)
        else:
            merged.append((list(user_ids), payload))
    if merged:
        _push(group, {"type": CONVERSATION_EVENT, "copies": [[ids, frame_text(p)] for ids, p in merged]})


def groups_join_on_commit(user_ids: Iterable[int], groups: Iterable[str]) -> None:
    """Once the transaction commits, every socket of these users joins `groups`. Sent to
    the users' own groups ahead of the pushes that tell the client about its new
    conversation (on_commit keeps the order), so a socket has joined by the time its
    client hears of it and syncs."""
    _membership_on_commit(GROUPS_JOIN, user_ids, groups)


def groups_leave_on_commit(user_ids: Iterable[int], groups: Iterable[str]) -> None:
    """groups_join_on_commit's counterpart, for groups that will carry nothing more (an
    ended session's conversation): memberships are only the route, never the permission."""
    _membership_on_commit(GROUPS_LEAVE, user_ids, groups)


def _membership_on_commit(kind: str, user_ids: Iterable[int], groups: Iterable[str]) -> None:
    message = {"type": kind, "groups": list(groups)}
    targets = [user_group(uid) for uid in user_ids]
    transaction.on_commit(lambda: _push_each(targets, message))


def send_on_commit(groups: Iterable[str], payload: dict[str, Any], *, coalesce: bool = False) -> None:
    """Send `payload` to every socket in `groups` once the current transaction commits.
    coalesce=True for busy fan-out groups (forum threads and boards): see _Coalescer."""
    targets = list(dict.fromkeys(groups))
    transaction.on_commit(lambda: send_now(targets, payload, coalesce=coalesce))


def send_to_users_on_commit(user_ids: Iterable[int], payload: dict[str, Any]) -> None:
    send_on_commit([user_group(uid) for uid in user_ids], payload)


def close_user_sockets_on_commit(user_id: int, *, code: int = 4401, reason: str = "logged_out") -> None:
    message = {"type": SOCKET_CLOSE, "code": code, "reason": reason}
    transaction.on_commit(lambda: _group_send(user_group(user_id), message))
