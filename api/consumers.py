"""The single client websocket at /ws/.

Transport only: authenticate, parse and bound every frame, authorise it by role, hand
it to the registered handler (api/wsproto.py) in a worker thread — or first to its
event-loop handler, where the route has one (message.send) — and send back what the
handler returns. Every failure becomes an `error` frame with a stable code; the
socket never dies from bad input. Pushes from services arrive as `client.event`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from asgiref.sync import SyncToAsync
from channels.auth import get_user
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections
from redis.exceptions import RedisError

from accounts.tokens import token_lookup
from config import realtime
from config.exceptions import ServiceError
from config.layers import InvalidPayload
from config.realtime import role_group, user_group

from . import layer_watch, revalidate, sockets, wsproto
from .errors import ws_error, ws_error_from

logger = logging.getLogger(__name__)

SUBPROTOCOL = "earlyhelp.v1"
TOKEN_SUBPROTOCOL_PREFIX = "token."
CLOSE_UNAUTHENTICATED = 4401
CLOSE_AUTH_TIMEOUT = 4408
# Consecutive channel-layer failures (0.5 s apart) tolerated before the socket is given up.
LAYER_RETRY_LIMIT = 120
# What a Redis restart, pause or network blip raises; anything else is a bug and is raised.
TRANSIENT_LAYER_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, RedisError)


def in_thread_pool(fn):
    """Run sync `fn` (database work) in the event loop's thread pool, not in asgiref's one
    shared "thread-sensitive" thread. In that one thread every socket's database work in
    the process ran one call at a time, so a message waited for every other socket's
    commit (and its WAL flush) and for any slow call before it. Each pool thread takes
    its own connection from the process's pool (settings: DB_POOL_MAX); a socket's own
    frames still run one after another (the consumer awaits each), and what must not
    interleave across sockets is ordered by the database (the conversation row lock)."""
    return _PoolThreadCall(fn, thread_sensitive=False)


class _PoolThreadCall(SyncToAsync):
    """channels' database_sync_to_async, with Django's clean-up called directly: Channels'
    test communicator patches out channels.db's, which suits one shared thread but would
    leave a pool thread's connection checked out of the pool when the thread ends."""

    def thread_handler(self, loop, *args, **kwargs):
        close_old_connections()
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            close_old_connections()


@in_thread_pool
def _token_user(key: str):
    token = token_lookup(key=key)
    if token is None:
        return None, None
    return token.user, token.id


@in_thread_pool  # built once: wrapping per frame cost more than the frame's json.loads
def _call_in_pool(user, route: wsproto.Route, frame: dict[str, Any], pushes: list) -> wsproto.WsResult:
    # Pushes the handler's services make after commit are kept in `pushes` and sent
    # from the event loop (realtime.collect), also when the handler fails afterwards.
    with realtime.collect() as collected:
        try:
            return wsproto.as_result(route.handler(user, frame))
        finally:
            pushes.extend(collected)


def _log_failure(task: asyncio.Task) -> None:
    """A frame's task failing past its own error handling (its reply could not be sent)."""
    if not task.cancelled() and task.exception() is not None:
        logger.warning("websocket frame task failed (%s)", type(task.exception()).__name__)


class TokenBucket:
    """Per-socket rate limit; over the limit a frame is refused with `rate_limited`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.capacity = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class NoConnectionHopDispatch:
    """Dispatch without Channels' per-message database clean-up.

    Channels (4.2+) hops to the sync thread to close stale database connections before
    *every* message, pushes included: on a busy process that was one queued thread hop
    per frame sent (a forum post to 200 watchers: 200 hops), and a crisis frame's handler
    waited behind them in that one thread. Consumers using this touch the database only
    through in_thread_pool, which does the same clean-up in the thread that uses
    the connection, before and after."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


# Channel-layer messages that only forward a frame to the client (see ClientConsumer.dispatch).
PUSHES = frozenset({realtime.CLIENT_EVENT, realtime.CONVERSATION_EVENT})


class ClientConsumer(NoConnectionHopDispatch, AsyncWebsocketConsumer):
    _storing: asyncio.Task | None = None  # the message.send being stored (dispatch)
    _db_wrapper_made = False  # receive: the connection wrapper is in this socket's context

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels hands a consumer one message at a time, frames and pushes alike, each
        awaited before the next. A message.send (a route with an event-loop handler) is
        stored in a task of its own instead, and while it is, pushes (`client.event`) go
        out at once: a counsellor's incoming messages no longer wait behind the
        counsellor's own send, which under load is a group commit of tens of milliseconds
        (docs/benchmarks.md, twenty-third pass: a steadier p99 near the capacity knee, for
        ~3% more CPU a message). Nothing a client can see is new: that
        frame's only output is its reply (ack or error), sent when it is done, so a push
        sent meanwhile is what the socket would have seen had the push arrived just before
        the frame. Everything else — the next frame, a disconnect, a close push — waits
        for the send, so frames are still handled one at a time and in order, and a
        socket's last message is stored and answered before its disconnect is handled."""
        if self._storing is not None and message["type"] not in PUSHES:
            storing, self._storing = self._storing, None
            # Its failures are answered to the client by _handle itself; a cancelled wait
            # (the socket's task ending) leaves it running, as a send must not be cut off.
            await asyncio.wait([storing])
        await super().dispatch(message)

    # Channels assigns `channel_receive` (the channel-layer reader) in __call__. A Redis
    # restart or timeout would raise out of it and kill the socket; instead we keep the
    # socket, retry, and once the layer answers again rejoin our groups and resend the
    # connect-time state (chat.state, escalation.list) so nothing missed stays missed.
    @property
    def channel_receive(self):
        return self._resilient_channel_receive

    @channel_receive.setter
    def channel_receive(self, reader) -> None:
        self._raw_channel_receive = reader

    async def _resilient_channel_receive(self):
        failures = 0
        while True:
            try:
                message = await self._raw_channel_receive()
            except TRANSIENT_LAYER_ERRORS as exc:
                if failures == 0:
                    logger.warning("channel layer receive failed (%s: %s); retrying", type(exc).__name__, exc)
                failures += 1
                if failures > LAYER_RETRY_LIMIT:
                    raise  # give up: the socket closes and the client reconnects elsewhere
                await asyncio.sleep(0.5)
                continue
            except InvalidPayload as exc:
                # Not sealed with our keys (a process on other keys, or tampering): drop
                # that push, keep the socket; pushes are hints and the client resyncs.
                logger.warning("dropped a channel-layer push: %s", exc)
                continue
            if failures:
                self.layer_recovered()
            return message

    def layer_recovered(self) -> None:
        """Called by api.layer_watch when Redis lost its state (restart, flush)."""
        self._tasks.append(asyncio.create_task(self._recover_after_layer_failure()))

    async def _recover_after_layer_failure(self) -> None:
        if self.user is None:
            return
        if await self._rejoin_groups():
            await self._run_connect_hooks(self.user)

    async def _rejoin_groups(self) -> bool:
        """Re-add every group of this socket (idempotent; also refreshes group_expiry).
        False if the layer refused, so callers can leave the rest for the next try."""
        for group in list(self.joined):
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except Exception:
                logger.warning("could not rejoin group", exc_info=True)
                return False
        return True

    async def connect(self) -> None:
        self.user = None
        self.token_id: int | None = None
        self.joined: set[str] = set()
        self.bucket = TokenBucket(settings.WS_RATE_PER_S, settings.WS_RATE_BURST)
        self._tasks: list[asyncio.Task] = []
        offered = self.scope.get("subprotocols") or []
        token_key = next((p[len(TOKEN_SUBPROTOCOL_PREFIX):] for p in offered if p.startswith(TOKEN_SUBPROTOCOL_PREFIX)), None)
        # A browser fails the handshake unless we echo one protocol it offered.
        await self.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        if token_key:
            user, token_id = await _token_user(token_key)
            if user is None:
                await self._refuse("authentication_failed", "Invalid or revoked token.")
                return
            await self._authenticated(user, token_id)
            return
        session_user = await get_user(self.scope) if "session" in self.scope else None
        if session_user is not None and session_user.is_authenticated and session_user.is_active:
            await self._authenticated(session_user, None)
            return
        self._tasks.append(asyncio.create_task(self._auth_deadline()))

    async def disconnect(self, code: int) -> None:
        sockets.unregister(self)
        for task in self._tasks:
            task.cancel()
        await self._leave_all()

    async def _leave_all(self) -> None:
        # Best effort: memberships left behind expire with group_expiry, and pushes to a
        # closed channel are dropped by the layer.
        for group in list(self.joined):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception as exc:
                logger.warning("group_discard failed (%s)", type(exc).__name__)
                break
        self.joined.clear()

    # --- inbound ----------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is not None:
            await self._send(ws_error("binary_not_supported"))
            return
        text = text_data or ""
        if len(text) > settings.WS_MAX_FRAME_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > settings.WS_MAX_FRAME_BYTES:
            await self._send(ws_error("frame_too_large", f"Frames are limited to {settings.WS_MAX_FRAME_BYTES} bytes."))
            return
        if not self.bucket.take():
            await self._send(ws_error("rate_limited", "Slow down: too many frames. Unsent messages can be retried."))
            return
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):
            await self._send(ws_error("invalid_json"))
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self._send(ws_error("invalid_frame"))
            return
        ref = frame.get("ref", frame.get("client_msg_id"))
        if not isinstance(ref, str | int | None) or isinstance(ref, bool):
            ref = None
        frame_type = frame["type"]
        if frame_type == "auth":
            await self._auth_frame(frame, ref)
            return
        if frame_type == "ping":
            await self._send({"type": "pong", "ref": ref})
            return
        if self.user is None:
            await self._send(ws_error("not_authenticated", "Send {\"type\": \"auth\", \"token\": ...} first.", ref))
            return
        route = wsproto.route_for(frame_type)
        if route is None:
            await self._send(ws_error("unknown_type", f"Unknown frame type {frame_type[:64]!r}.", ref))
            return
        if route.roles is not None and self.user.role not in route.roles:
            await self._send(ws_error("wrong_role", f"{frame_type} is not available to your role.", ref))
            return
        if route.on_loop is not None:
            # Stored in a task of its own: see dispatch. The task runs in a copy of this
            # socket's context, so the database connection wrapper Django keeps per context
            # is made here, once, and inherited; made in the copy, it would be built anew
            # and thrown away for every message. Once: a lookup per frame cost ~1.6 µs, and
            # made at authentication instead, the wrapper cost every socket that never sends
            # ~3.5 KB (twenty-ninth pass).
            if not self._db_wrapper_made:
                connections[DEFAULT_DB_ALIAS]  # noqa: B018
                self._db_wrapper_made = True
            self._storing = asyncio.create_task(self._handle(route, frame, ref))
            self._storing.add_done_callback(_log_failure)
            return
        await self._handle(route, frame, ref)

    async def _handle(self, route: wsproto.Route, frame: dict[str, Any], ref: Any) -> None:
        pushes: list = []
        try:
            result = await self._on_loop(route, frame, pushes) if route.on_loop is not None else None
            if result is None:
                result = await _call_in_pool(self.user, route, frame, pushes)
        except ServiceError as exc:
            await realtime.deliver(pushes)  # whatever committed before the error still goes out
            await self._send(ws_error_from(exc, ref))
            return
        except Exception:
            await realtime.deliver(pushes)
            # Never log the frame: it may hold chat text.
            logger.exception("websocket handler %s failed", route.type)
            await self._send(ws_error("server_error", None, ref))
            return
        await realtime.deliver(pushes)
        await self._apply(result)

    async def _on_loop(self, route: wsproto.Route, frame: dict[str, Any], pushes: list) -> wsproto.WsResult | None:
        """The route's event-loop handler; None: it handed the frame to the thread handler."""
        with realtime.collect() as collected:
            try:
                value = await route.on_loop(self.user, frame)
            finally:
                pushes.extend(collected)
        return None if value is None else wsproto.as_result(value)

    async def _apply(self, result: wsproto.WsResult) -> None:
        for group in result.join:
            if group not in self.joined:
                self.joined.add(group)  # kept even if the add fails: recovery re-adds it
                try:
                    await self.channel_layer.group_add(group, self.channel_name)
                except Exception as exc:
                    logger.warning("group_add failed (%s); will rejoin when the layer recovers", type(exc).__name__)
        for group in result.leave:
            if group in self.joined:
                self.joined.discard(group)  # not rejoined by recovery, even if the discard fails
                try:
                    await self.channel_layer.group_discard(group, self.channel_name)
                except Exception as exc:
                    # Logged, not fatal: the pub/sub layer drops the socket's membership (kept
                    # in-process) before the Redis unsubscribe that failed; the core layer's
                    # expires with group_expiry.
                    logger.warning("group_discard failed (%s)", type(exc).__name__)
        for reply in result.replies:
            await self._send(reply)

    # --- authentication -------------------------------------------------------------
    async def _auth_frame(self, frame: dict[str, Any], ref: Any) -> None:
        if self.user is not None:
            await self._send({"type": "auth.ok", "user": self._user_payload(), "ref": ref})
            return
        key = frame.get("token")
        if not isinstance(key, str) or not key:
            await self._refuse("authentication_failed", "`token` is required.", ref)
            return
        user, token_id = await _token_user(key)
        if user is None:
            await self._refuse("authentication_failed", "Invalid or revoked token.", ref)
            return
        await self._authenticated(user, token_id, ref)

    async def _authenticated(self, user, token_id: int | None, ref: Any = None) -> None:
        self.user, self.token_id = user, token_id
        sockets.register(self)
        layer_watch.start()
        revalidate.start()
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        await self._apply(wsproto.WsResult(join=[user_group(user.id), role_group(user.role)]))
        await self._send({"type": "auth.ok", "user": self._user_payload(), "ref": ref})
        await self._run_connect_hooks(user)

    async def _run_connect_hooks(self, user) -> None:
        for hook in wsproto.connect_hooks():
            try:
                result = await in_thread_pool(hook)(user)
            except Exception:
                logger.exception("websocket connect hook %s failed", getattr(hook, "__name__", hook))
                continue
            await self._apply(wsproto.as_result(result))

    def _user_payload(self) -> dict[str, Any]:
        return {"id": self.user.id, "handle": self.user.handle, "role": self.user.role, "display_name": self.user.display_name}

    async def _refuse(self, code: str, detail: str, ref: Any = None) -> None:
        await self._send(ws_error(code, detail, ref))
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(settings.WS_AUTH_TIMEOUT_S)
        if self.user is None:
            await self._send(ws_error("not_authenticated", "No auth frame received in time."))
            await self.close(code=CLOSE_AUTH_TIMEOUT)

    async def revoked(self) -> None:
        """Called by api.revalidate when the token or the user is no longer valid."""
        await self.socket_close({"code": CLOSE_UNAUTHENTICATED, "reason": "revoked"})

    # --- outbound (channel layer) -------------------------------------------------
    async def client_event(self, event: dict[str, Any]) -> None:
        if self.user is not None:
            text = event.get("text")
            await self.send(text_data=text if isinstance(text, str) else realtime.frame_text(event["payload"]))

    async def conversation_event(self, event: dict[str, Any]) -> None:
        """A conversation's push (realtime.send_copies_now): the copy for this socket's user,
        or nothing if the user is not among its recipients any more."""
        if self.user is None:
            return
        user_id = self.user.id
        for user_ids, text in event["copies"]:
            if user_id in user_ids:
                await self.send(text_data=text)
                return

    async def groups_join(self, event: dict[str, Any]) -> None:
        """Services add this user's sockets to groups (realtime.groups_join_on_commit)."""
        if self.user is not None:
            await self._apply(wsproto.WsResult(join=list(event["groups"])))

    async def groups_leave(self, event: dict[str, Any]) -> None:
        if self.user is not None:
            await self._apply(wsproto.WsResult(leave=list(event["groups"])))

    async def socket_close(self, event: dict[str, Any]) -> None:
        reason = event.get("reason", "logged_out")
        await self._send({"type": "auth.revoked", "reason": reason})
        user, self.user = self.user, None
        if user is not None:
            await self._leave_all()
        await self.close(code=event.get("code", CLOSE_UNAUTHENTICATED))

    async def _send(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=realtime.frame_text(payload))
