// Shared client: REST with CSRF, one reconnecting websocket, lossless chat sync,
// crisis dialog, quick exit and live announcements. No dependencies, no tracking.

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

function cookie(name) {
  const row = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return row ? decodeURIComponent(row.slice(name.length + 1)) : "";
}

/** REST call under /api/v1/. Throws ApiError with the backend's stable error code. */
export async function api(method, path, body, { keepalive = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = cookie("csrftoken");
  const resp = await fetch("/api/v1/" + path, {
    method,
    headers,
    credentials: "same-origin",
    keepalive,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 204) return null;
  let data = null;
  try {
    data = await resp.json();
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(resp.status, err.code || "http_" + resp.status, err.detail || resp.statusText);
  }
  return data;
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Tiny element builder: h("p", {class: "x"}, "text", child). Text is never parsed as HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

export function timeOf(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function minutes(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const m = Math.max(1, Math.round(seconds / 60));
  return m === 1 ? "about a minute" : `about ${m} minutes`;
}

/** Polite screen-reader announcement plus a visible toast. */
export function announce(text, { urgent = false } = {}) {
  const live = document.getElementById(urgent ? "live-assertive" : "live-polite");
  if (live) {
    live.textContent = "";
    setTimeout(() => (live.textContent = text), 30);
  }
  const toasts = document.getElementById("toasts");
  if (toasts) {
    const t = h("div", { class: "toast" + (urgent ? " urgent" : "") }, text);
    toasts.append(t);
    setTimeout(() => t.remove(), 8000);
  }
}

// --- websocket --------------------------------------------------------------------------

/**
 * One socket for the page, authenticated by the cookie session. Reconnects with backoff
 * (and at once when the browser comes back online). Handlers: on(type, fn); "open" fires
 * after every auth.ok, "status" with "online" | "offline" | "connecting".
 */
export class Socket {
  constructor(path = "/ws/") {
    this.url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
    this.handlers = new Map();
    this.pending = new Map();
    this.attempt = 0;
    this.ws = null;
    this.ready = false;
    this.refSeq = 0;
    this.closedForGood = false;
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.ws && this.ws.close());
  }

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(fn);
    return this;
  }

  emit(type, frame) {
    for (const fn of this.handlers.get(type) || []) {
      try {
        fn(frame);
      } catch (e) {
        console.error(e); // eslint-disable-line no-console
      }
    }
  }

  connect() {
    if (this.closedForGood) return;
    this.setStatus("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, ["earlyhelp.v1"]);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      // A busy forum thread's pushes arrive merged: {"type": "batch", "frames": [...]}.
      const frames = frame.type === "batch" && Array.isArray(frame.frames) ? frame.frames : [frame];
      for (const f of frames) this.handleFrame(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ready = false;
      this.ws = null;
      for (const { reject } of this.pending.values()) reject({ type: "error", code: "disconnected" });
      this.pending.clear();
      this.setStatus("offline");
      if (ev.code === 4401) {
        this.closedForGood = true;
        this.emit("signed_out", ev);
        return;
      }
      this.scheduleReconnect();
    };
  }

  handleFrame(frame) {
    if (frame.type === "auth.ok") {
      this.ready = true;
      this.attempt = 0;
      this.user = frame.user;
      this.setStatus("online");
      this.emit("open", frame);
    }
    if (frame.type === "auth.revoked") this.closedForGood = true;
    if (frame.ref !== undefined && frame.ref !== null && this.pending.has(frame.ref)) {
      const { resolve, reject } = this.pending.get(frame.ref);
      this.pending.delete(frame.ref);
      if (frame.type === "error") reject(frame);
      else resolve(frame);
    }
    this.emit(frame.type, frame);
    this.emit("*", frame);
  }

  scheduleReconnect() {
    clearTimeout(this.timer);
    const delay = Math.min(15000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.ws || this.closedForGood) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  setStatus(status) {
    this.status = status;
    document.body.dataset.socket = status;
    const el = document.getElementById("conn");
    if (el) {
      el.textContent = { online: "Connected", offline: "Offline — reconnecting…", connecting: "Connecting…" }[status];
      el.className = "conn " + status;
    }
    this.emit("status", status);
  }

  /** Fire and forget; false when not connected. */
  send(frame) {
    if (!this.ready || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Send with a ref and wait for the reply carrying it (rejects with the error frame). */
  request(frame, timeoutMs = 10000) {
    const ref = frame.ref || `r${++this.refSeq}`;
    return new Promise((resolve, reject) => {
      if (!this.send({ ...frame, ref })) {
        reject({ type: "error", code: "disconnected", detail: "Not connected." });
        return;
      }
      this.pending.set(ref, { resolve, reject });
      setTimeout(() => {
        if (this.pending.delete(ref)) reject({ type: "error", code: "timeout", detail: "No reply." });
      }, timeoutMs);
    });
  }
}

// --- chat sync ------------------------------------------------------------------------

/**
 * Lossless transcripts. Tracks the last seq per conversation; a gap in pushed messages
 * or a reconnect triggers `sync` from that seq. Outgoing messages keep their
 * client_msg_id and are resent until acked (the server deduplicates), so a drop never
 * loses or doubles a message. onChange(conversationId) redraws.
 */
const RETRYABLE = new Set(["rate_limited", "server_error", "disconnected", "timeout", "service_unavailable"]);

export class ChatStore {
  constructor(socket, onChange) {
    this.socket = socket;
    this.onChange = onChange;
    this.convs = new Map(); // id -> {lastSeq, messages: Map(seq -> msg), syncing}
    this.outbox = new Map(); // client_msg_id -> {conversation, body, sentAt}
    socket.on("open", () => {
      for (const id of this.convs.keys()) this.sync(id);
      this.flush();
    });
    socket.on("message.new", (m) => this.add(m));
    socket.on("message.ack", (a) => this.ack(a));
    socket.on("error", (e) => {
      // Retry what may succeed later; drop what never will and say so.
      if (!this.outbox.has(e.ref) || RETRYABLE.has(e.code)) return;
      const o = this.outbox.get(e.ref);
      this.outbox.delete(e.ref);
      announce(e.detail || "That message could not be sent.", { urgent: true });
      this.onChange(o.conversation);
    });
    setInterval(() => this.flush(true), 4000);
  }

  conv(id) {
    if (!this.convs.has(id)) this.convs.set(id, { lastSeq: 0, messages: new Map(), syncing: false });
    return this.convs.get(id);
  }

  track(id) {
    const isNew = !this.convs.has(id);
    this.conv(id);
    if (isNew) this.sync(id);
  }

  forget(id) {
    this.convs.delete(id);
  }

  messages(id) {
    const c = this.convs.get(id);
    if (!c) return [];
    const sent = [...c.messages.values()].sort((a, b) => a.seq - b.seq);
    const sentIds = new Set(sent.map((m) => m.client_msg_id));
    const waiting = [...this.outbox.entries()]
      .filter(([cid, o]) => o.conversation === id && !sentIds.has(cid))
      .map(([cid, o]) => ({ client_msg_id: cid, body: o.body, pending: true, sender: this.socket.user && this.socket.user.id }));
    return sent.concat(waiting);
  }

  add(m) {
    if (!this.convs.has(m.conversation)) return;
    const c = this.conv(m.conversation);
    if (m.client_msg_id) this.outbox.delete(m.client_msg_id);
    if (c.messages.has(m.seq)) return;
    c.messages.set(m.seq, m);
    if (m.seq === c.lastSeq + 1) c.lastSeq = m.seq;
    else if (m.seq > c.lastSeq + 1) this.sync(m.conversation); // gap: fetch what we missed
    this.onChange(m.conversation, m);
  }

  ack(a) {
    const o = this.outbox.get(a.client_msg_id);
    if (!o) return;
    this.outbox.delete(a.client_msg_id);
    if (a.seq > this.conv(a.conversation).lastSeq) this.sync(a.conversation);
    this.onChange(a.conversation);
  }

  async sync(id) {
    const c = this.conv(id);
    if (c.syncing) {
      c.again = true;
      return;
    }
    c.syncing = true;
    try {
      for (let i = 0; i < 50; i++) {
        const page = await this.socket.request({ type: "sync", conversation: id, after_seq: c.lastSeq, limit: 200 });
        for (const m of page.messages) {
          if (m.client_msg_id) this.outbox.delete(m.client_msg_id);
          c.messages.set(m.seq, m);
          if (m.seq > c.lastSeq) c.lastSeq = m.seq;
        }
        c.lastRead = page.last_read_seq;
        if (!page.has_more) break;
      }
      this.onChange(id);
    } catch {
      // disconnected: the next "open" syncs again
    } finally {
      c.syncing = false;
      if (c.again) {
        c.again = false;
        this.sync(id);
      }
    }
  }

  send(conversation, body) {
    const cid = uuid();
    this.outbox.set(cid, { conversation, body, sentAt: 0 });
    this.onChange(conversation);
    this.flush();
    return cid;
  }

  flush(onlyStale = false) {
    const now = Date.now();
    for (const [cid, o] of this.outbox) {
      if (onlyStale && now - o.sentAt < 4000) continue;
      if (this.socket.send({ type: "message.send", conversation: o.conversation, client_msg_id: cid, body: o.body, ref: cid })) {
        o.sentAt = now;
      }
    }
  }
}

// --- page chrome: crisis dialog, quick exit, sign out ------------------------------------

export function quickExit() {
  const target = document.body.dataset.quickExit || "https://www.bbc.co.uk/weather";
  try {
    sessionStorage.clear();
  } catch {
    /* storage may be disabled */
  }
  document.title = "Weather";
  document.body.replaceChildren();
  // End the signed-in session too, so a back button or a shared device shows nothing.
  try {
    fetch("/api/v1/auth/logout/", {
      method: "POST",
      credentials: "same-origin",
      keepalive: true,
      headers: { "X-CSRFToken": cookie("csrftoken") },
    });
  } catch {
    /* leaving matters more */
  }
  location.replace(target);
}

export async function signOut() {
  try {
    await api("POST", "auth/logout/");
  } catch {
    /* already signed out */
  }
  sessionStorage.clear();
  location.assign("/");
}

function setupChrome() {
  const exit = document.getElementById("quick-exit");
  if (exit) exit.addEventListener("click", quickExit);
  const dialog = document.getElementById("crisis-dialog");
  const open = document.getElementById("crisis-open");
  if (dialog && open) {
    open.addEventListener("click", () => dialog.showModal());
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
  }
  const out = document.getElementById("sign-out");
  if (out) out.addEventListener("click", signOut);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setupChrome);
else setupChrome();
