"""Open-loop websocket load generator (asyncio; picows by default, `websockets` as the passes
before the thirtieth measured with: `bench/run.py --client-ws`).

Messages are sent at times drawn in advance from a Poisson process; each message carries
an id (its `client_msg_id`, also the first word of the body) and its scheduled wall-clock
timestamp. Latency is always measured from the *scheduled* time, so a slow server (or a
late client) shows up as latency instead of silently slowing the offered load (no
coordinated omission). Every message ends delivered (the counterpart's `message.new`, or
the `sync.result` after a reconnect), errored (an `error` frame naming it) or lost.

Clients follow docs/protocol.md: unacknowledged messages are resent with the same
`client_msg_id` after a reconnect; a seq gap or a reconnect triggers `sync`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
import uuid
from collections import Counter

import orjson
import picows
import websockets

FILLER = ("today was alright i went to school then walked the dog and had pasta for tea, "
          "i have a maths test on friday and i am revising with my friend after football ")
CRISIS = [
    "i want to kill myself tonight",
    "i am going to take all my tablets tonight, i want to end my life",
    "i have a rope ready and i am going to hang myself tonight",
]
ESC_ID = re.compile(r"^([0-9a-f]{32})")


def body_for(cmid: str, sched_wall: float, size: int, crisis: bool, heads: str = "all") -> str:
    """A chat message of `size` characters. Each begins with its id and scheduled time (issue 7:
    "each message carries an id and a timestamp"; the id is how an escalation.new, which carries
    the text, is matched to it). With heads="crisis" only crisis messages do, the others are the
    filler alone: the head's hex digits and time cost the product's inline triage ~55 µs a
    message, for text no young person writes (docs/benchmarks.md, twenty-sixth pass)."""
    head = f"{cmid} t={sched_wall:.6f} " if crisis or heads == "all" else ""
    core = random.choice(CRISIS) + " " if crisis else ""
    text = head + core
    while len(text) < size:
        text += FILLER
    return text[: max(size, len(head) + len(core))]


class Rec:
    __slots__ = ("cmid", "conv", "sender", "receiver", "sched", "sent", "ack", "deliv", "via", "err", "crisis",
                 "esc_first", "esc_n", "banner", "tag", "resends", "data")

    def __init__(self, cmid, conv, sender, receiver, sched, crisis, tag):
        self.cmid, self.conv, self.sender, self.receiver = cmid, conv, sender, receiver
        self.sched, self.crisis, self.tag = sched, crisis, tag
        self.sent = self.ack = self.deliv = self.esc_first = self.banner = None
        self.via = self.err = None
        self.esc_n = 0
        self.resends = 0
        self.data = ""


class PostRec:
    __slots__ = ("key", "sched", "sent", "status", "done", "first", "arrivals")

    def __init__(self, key, sched):
        self.key, self.sched = key, sched
        self.sent = self.status = self.done = self.first = None
        self.arrivals: list[float] = []


class _PicowsLink:
    """One connection through picows (the default): frames arrive in a callback, straight from
    its Cython parser, and are written synchronously; no task wakes per frame."""

    def __init__(self, sock: Sock) -> None:
        self.sock = sock
        self.transport = None
        self.partial: list[bytes] = []  # a fragmented message's frames so far (autobahn does not fragment)

    @staticmethod
    async def open(sock: Sock, url: str) -> _PicowsLink:
        link = _PicowsLink(sock)
        link.transport, _ = await picows.ws_connect(
            lambda: _PicowsListener(link), url, websocket_handshake_timeout=60, max_frame_size=2**22,
            extra_headers=[("Origin", "http://127.0.0.1"),
                           ("Sec-WebSocket-Protocol", f"earlyhelp.v1, token.{sock.token}")])
        return link

    def on_frame(self, transport, frame) -> None:
        kind = frame.msg_type
        if kind == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if kind not in (picows.WSMsgType.TEXT, picows.WSMsgType.CONTINUATION):
            return
        if not frame.fin or self.partial:
            self.partial.append(frame.get_payload_as_bytes())
            if not frame.fin:
                return
            payload, self.partial = b"".join(self.partial), []
        else:
            payload = frame.get_payload_as_memoryview()  # valid only in this callback: parsed here
        self.sock.received(payload)

    def send(self, text: str) -> None:
        self.transport.send(picows.WSMsgType.TEXT, text.encode())

    def abort(self) -> None:
        self.transport.disconnect(graceful=False)

    async def close(self) -> None:
        self.transport.send_close(picows.WSCloseCode.OK)
        self.transport.disconnect()
        await asyncio.wait_for(self.transport.wait_disconnected(), 2)


class _PicowsListener(picows.WSListener):
    def __init__(self, link: _PicowsLink) -> None:
        super().__init__()
        self.link = link

    def on_ws_frame(self, transport, frame) -> None:
        self.link.on_frame(transport, frame)

    def on_ws_disconnected(self, transport) -> None:
        if self.link.sock.link is self.link:
            self.link.sock.connected = False


class _WebsocketsLink:
    """One connection through `websockets` (`--client-ws websockets`, what the passes before the
    thirtieth measured with): a reader task and a writer task with its queue per socket."""

    def __init__(self, sock: Sock, ws) -> None:
        self.sock, self.ws = sock, ws
        self.out: asyncio.Queue = asyncio.Queue()
        self.tasks = [asyncio.create_task(self._reader()), asyncio.create_task(self._writer())]

    @staticmethod
    async def open(sock: Sock, url: str) -> _WebsocketsLink:
        ws = await websockets.connect(
            url, origin="http://127.0.0.1", subprotocols=["earlyhelp.v1", f"token.{sock.token}"],
            compression=None, ping_interval=None, max_queue=None, open_timeout=60, close_timeout=2,
            max_size=2**22)
        return _WebsocketsLink(sock, ws)

    async def _writer(self) -> None:
        while True:
            data = await self.out.get()
            try:
                await self.ws.send(data)
            except Exception:
                return

    async def _reader(self) -> None:
        try:
            async for raw in self.ws:
                self.sock.received(raw)
        except Exception:
            pass
        finally:
            if self.sock.link is self:
                self.sock.connected = False

    def send(self, text: str) -> None:
        self.out.put_nowait(text)

    def abort(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.ws.transport.abort()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.wait_for(self.ws.close(), 2)


LINKS = {"picows": _PicowsLink, "websockets": _WebsocketsLink}
CONNECT_ERRORS = (OSError, TimeoutError, EOFError, websockets.WebSocketException, picows.WSError)


class Sock:
    def __init__(self, gen: Gen, url: str, token: str, user_id: int, role: str, conv: int | None = None) -> None:
        self.gen, self.url, self.token, self.user_id, self.role, self.conv = gen, url, token, user_id, role, conv
        self.link: _PicowsLink | _WebsocketsLink | None = None
        self.peer: Sock | None = None
        self.pending: list[str] = []  # frames written while disconnected: sent once reconnected
        self.unacked: dict[str, Rec] = {}
        self.seen: set[int] = set()
        self.contig = 0
        self.syncing = False
        self.connected = False
        self.auth: asyncio.Future | None = None
        self.reconnect_times: list[float] = []
        self.thread: int | None = None
        self.connect_failures = 0

    # --- connection --------------------------------------------------------------------
    async def connect(self, *, resync: bool = False) -> float:
        t0 = time.monotonic()
        ws_url = self.url.replace("http://", "ws://") + "/ws/"
        deadline, backoff = t0 + 120, 0.2
        self.auth = asyncio.get_running_loop().create_future()
        while True:  # an overloaded server may refuse or cut handshakes: retry with backoff
            try:
                self.link = await LINKS[self.gen.ws].open(self, ws_url)
                break
            except CONNECT_ERRORS:
                self.connect_failures += 1
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 5.0)
        await asyncio.wait_for(self.auth, 60)
        self.connected = True
        pending, self.pending = self.pending, []
        for data in pending:
            self.write(data)
        if self.thread is not None:
            self.write(json.dumps({"type": "forum.subscribe", "thread_id": self.thread}))
        if self.conv is not None:  # a client that (re)connects syncs its conversation first
            self.request_sync()
            for rec in list(self.unacked.values()):  # resend with the same client_msg_id
                rec.resends += 1
                self.write(rec.data)
        dt = time.monotonic() - t0
        self.reconnect_times.append(dt)
        return dt

    def received(self, raw: str | bytes | memoryview) -> None:
        try:
            self.gen.on_frame(self, orjson.loads(raw), time.monotonic())
        except Exception as exc:  # a client bug must show, not silently close the socket
            self.gen.client_errors[f"{type(exc).__name__}: {exc}"[:120]] += 1

    def write(self, data: str) -> None:
        if self.link is None:  # dropped: sent once reconnected
            self.pending.append(data)
            return
        try:
            self.link.send(data)
        except Exception:  # the server closed it: lost, as a real client's would be (resent if unacked)
            pass

    def drop(self) -> None:
        """Abrupt loss of the connection (no close handshake)."""
        self.connected = False
        link, self.link = self.link, None
        if link is not None:
            with contextlib.suppress(Exception):
                link.abort()
        # Frames written before the drop are lost with it: the unacked resend on reconnect
        # sends the messages again; frames written from now on wait in `pending`.
        self.pending = []

    async def close(self) -> None:
        self.connected = False
        link, self.link = self.link, None
        if link is not None:
            with contextlib.suppress(Exception):
                await link.close()

    # --- sending -------------------------------------------------------------------------
    def submit(self, rec: Rec) -> None:
        self.unacked[rec.cmid] = rec
        rec.sent = time.monotonic()
        self.write(rec.data)

    def request_sync(self) -> None:
        if self.syncing or self.conv is None:
            return
        self.syncing = True
        self.write(json.dumps({"type": "sync", "conversation": self.conv, "after_seq": self.contig, "limit": 200}))

    def mark_seq(self, seq: int) -> None:
        self.seen.add(seq)
        while self.contig + 1 in self.seen:
            self.contig += 1


class Gen:
    def __init__(self, heads: str = "all", ws: str = "picows") -> None:
        self.heads = heads  # body_for's: which messages begin with their id and time
        self.ws = ws  # the websocket client library: a key of LINKS
        self.recs: dict[str, Rec] = {}
        self.posts: dict[str, PostRec] = {}
        self.frames = Counter()
        self.errors = Counter()
        self.client_errors = Counter()
        self.other_errors: list[dict] = []
        self.clinicians: list[Sock] = []
        self.esc_arrivals: list[tuple[str, float]] = []
        self.phase = "steady"

    # --- inbound --------------------------------------------------------------------------
    def on_frame(self, sock: Sock, frame: dict, t: float) -> None:
        ft = frame.get("type")
        self.frames[ft] += 1
        if ft == "batch":  # merged pushes of a busy forum thread: each counts as itself
            for inner in frame.get("frames") or []:
                self.on_frame(sock, inner, t)
            return
        if ft == "message.new":
            self._message(sock, frame, t, "push")
            seq = frame.get("seq")
            if frame.get("conversation") == sock.conv and isinstance(seq, int) and seq > sock.contig + 1 and not sock.syncing:
                sock.request_sync()  # a gap: resync from the database
        elif ft == "message.ack":
            rec = sock.unacked.pop(str(frame.get("client_msg_id", "")).replace("-", ""), None)
            if rec is not None and rec.ack is None:
                rec.ack = t
        elif ft == "sync.result":
            for m in frame.get("messages", []):
                self._message(sock, {**m, "conversation": frame["conversation"]}, t, "sync")
            sock.syncing = False
            if frame.get("has_more"):
                sock.request_sync()
            elif frame.get("last_seq", 0) > sock.contig:
                sock.request_sync()
        elif ft == "escalation.new":
            esc = frame["escalation"]
            m = ESC_ID.match(esc.get("message") or "")
            rec = self.recs.get(m.group(1)) if m else None
            if rec is not None:
                rec.esc_n += 1
                if rec.esc_first is None:
                    rec.esc_first = t
                self.esc_arrivals.append((rec.cmid, t))
                if self.clinicians and sock is self.clinicians[esc["id"] % len(self.clinicians)]:
                    sock.write(json.dumps({"type": "escalation.acknowledge", "escalation": esc["id"]}))
        elif ft == "forum.post":
            post = frame.get("post") or {}
            m = ESC_ID.match(post.get("body") or "")
            prec = self.posts.get(m.group(1)) if m else None
            if prec is not None and frame.get("event") == "published":
                prec.arrivals.append(t - prec.sched)
                if prec.first is None:
                    prec.first = t
        elif ft == "auth.ok":
            if sock.auth is not None and not sock.auth.done():
                sock.auth.set_result(True)
        elif ft == "error":
            ref = frame.get("ref")
            rec = self.recs.get(ref.replace("-", "")) if isinstance(ref, str) else None
            code = frame.get("code")
            self.errors[code] += 1
            if rec is not None and rec.deliv is None:
                rec.err = code
                sock.unacked.pop(rec.cmid, None)
            elif code != "conflict" and len(self.other_errors) < 20:
                self.other_errors.append(frame)

    def _message(self, sock: Sock, m: dict, t: float, via: str) -> None:
        if m.get("conversation") == sock.conv and isinstance(m.get("seq"), int):
            sock.mark_seq(m["seq"])
        cmid = m.get("client_msg_id")
        if not cmid:
            return
        rec = self.recs.get(cmid.replace("-", ""))
        if rec is None or m.get("sender") == sock.user_id:
            return
        if rec.deliv is None:
            rec.deliv, rec.via = t, via
        if rec.crisis and sock.role == "counsellor" and rec.banner is None:
            risk = m.get("risk") or {}
            if risk.get("level") in ("high", "imminent"):
                rec.banner = t

    # --- outbound -----------------------------------------------------------------------------
    def new_message(self, sender: Sock, sched: float, crisis: bool, size: int) -> Rec:
        cmid = uuid.uuid4().hex
        rec = Rec(cmid, sender.conv, sender.user_id, sender.peer.user_id if sender.peer else None, sched, crisis, self.phase)
        self.recs[cmid] = rec
        wall = time.time() - (time.monotonic() - sched)
        rec.data = json.dumps({"type": "message.send", "conversation": sender.conv, "client_msg_id": cmid,
                               "body": body_for(cmid, wall, size, crisis, self.heads)})
        if sender.connected:
            sender.submit(rec)
        else:  # the client keeps it and sends it after reconnecting (same id)
            sender.unacked[cmid] = rec
        return rec

    async def open_loop(self, senders: list[Sock], rate_fn, duration: float, *, crisis_p: float = 0.0,
                        size=(40, 400), phase_fn=None) -> float:
        """Poisson arrivals at rate_fn(elapsed) msgs/s spread over `senders`; returns the start time."""
        start = time.monotonic()
        t = start
        while True:
            t += random.expovariate(max(rate_fn(t - start), 1e-6))
            if t - start >= duration:
                break
            delay = t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if phase_fn is not None:
                self.phase = phase_fn(t - start)
            sender = random.choice(senders)
            crisis = sender.role == "young_person" and random.random() < crisis_p
            self.new_message(sender, t, crisis, random.randint(*size))
        return start

    async def drain(self, timeout: float, *, need_esc: bool = False, clinicians: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            open_ = [r for r in self.recs.values() if r.deliv is None and r.err is None]
            esc_open = [r for r in self.recs.values() if need_esc and r.crisis and r.esc_n < clinicians]
            if not open_ and not esc_open:
                return
            await asyncio.sleep(0.2)


async def connect_all(socks: list[Sock], concurrency: int = 50) -> list[float]:
    sem = asyncio.Semaphore(concurrency)

    async def one(s: Sock) -> float:
        async with sem:
            return await s.connect()

    return await asyncio.gather(*(one(s) for s in socks))


async def http_post(url: str, path: str, token: str, payload: dict, timeout: float = 30) -> int:
    """Minimal HTTP/1.1 POST over a fresh loopback connection; returns the status code."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(payload).encode()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
    try:
        writer.write((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        await asyncio.wait_for(reader.read(), timeout)
        return int(status_line.split()[1])
    finally:
        writer.close()
