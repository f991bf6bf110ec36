import { $, ChatStore, Socket, announce, h, timeOf } from "./client.js";

const RISK_ORDER = { imminent: 4, high: 3, moderate: 2, medium: 2, low: 1, none: 0 };
const socket = new Socket();
const panes = new Map(); // session id -> {session, el}
const byConversation = new Map(); // conversation id -> session id
const store = new ChatStore(socket, (conv) => {
  const sid = byConversation.get(conv);
  if (sid && panes.has(sid)) renderPane(panes.get(sid));
});

export function evidenceText(risk) {
  const spans = (risk.evidence || []).map((e) => (typeof e === "string" ? e : e.text)).filter(Boolean);
  return spans.length ? `“${[...new Set(spans)].join("”, “")}”` : "";
}

function riskBadge(level) {
  if (!level || level === "none") return null;
  return h("span", { class: `risk risk-${level}` }, `${level} risk`);
}

// --- queue ----------------------------------------------------------------------------
function renderQueue(frame) {
  $("#queue-count").textContent = frame.waiting;
  // The server orders by risk then waiting time; sort again so a stale push cannot mislead.
  const items = [...frame.queue].sort(
    (a, b) => (RISK_ORDER[b.risk_level] || 0) - (RISK_ORDER[a.risk_level] || 0) || a.position - b.position,
  );
  $("#queue").replaceChildren(
    ...items.map((q) =>
      h(
        "li",
        { class: `queue-item risk-edge-${q.risk_level || "none"}`, "data-session": q.session },
        h("div", {}, h("strong", {}, q.young_person.handle), " ", riskBadge(q.risk_level)),
        h("div", { class: "hint" }, q.topic || "No topic given", " · waiting since ", timeOf(q.requested_at)),
        h("button", { type: "button", onclick: () => accept(q.session) }, `Accept ${q.young_person.handle}`),
      ),
    ),
  );
  if (!items.length) $("#queue").append(h("li", { class: "hint" }, "Nobody is waiting."));
}

async function accept(sessionId) {
  try {
    await socket.request({ type: "session.accept", session: sessionId });
  } catch (e) {
    if (e.code) announce(e.detail || e.code, { urgent: true });
  }
}

// --- chat panes -------------------------------------------------------------------------
function openPane(s) {
  if (s.state !== "active") return;
  let pane = panes.get(s.session);
  if (!pane) {
    const el = $("#chat-pane").content.firstElementChild.cloneNode(true);
    el.dataset.session = s.session;
    pane = { session: s, el, risk: s.risk_level };
    panes.set(s.session, pane);
    byConversation.set(s.conversation, s.session);
    wirePane(pane);
    $("#chats").append(el);
    store.track(s.conversation);
  }
  pane.session = { ...pane.session, ...s };
  const title = pane.el.querySelector(".pane-title");
  title.replaceChildren(s.young_person.handle, " ", riskBadge(s.risk_level) || "");
  pane.el.querySelector(".pane-topic").textContent = s.topic || "";
  $("#no-chats").hidden = panes.size > 0;
  renderPane(pane);
}

function closePane(sessionId) {
  const pane = panes.get(sessionId);
  if (!pane) return;
  pane.el.remove();
  panes.delete(sessionId);
  byConversation.delete(pane.session.conversation);
  store.forget(pane.session.conversation);
  $("#no-chats").hidden = panes.size > 0;
}

function renderPane(pane) {
  const me = socket.user && socket.user.id;
  const msgs = store.messages(pane.session.conversation);
  let worst = null;
  const items = msgs.map((m) => {
    const mine = m.sender === me && m.kind !== "system";
    const risk = m.risk && m.risk.level !== "none" ? m.risk : null;
    if (risk && (!worst || (RISK_ORDER[risk.level] || 0) >= (RISK_ORDER[worst.level] || 0))) worst = risk;
    return h(
      "li",
      { class: `msg ${mine ? "mine" : "theirs"} ${m.kind === "system" ? "system" : ""} ${m.pending ? "pending" : ""}`, "data-seq": m.seq },
      h("span", { class: "who" }, m.kind === "system" ? "System" : mine ? "You" : m.sender_name || "Young person"),
      h("p", { class: "body" }, m.body),
      risk ? h("p", { class: `evidence risk-${risk.level}` }, `${risk.level}: ${(risk.categories || []).join(", ")} ${evidenceText(risk)}`) : null,
      h("span", { class: "meta" }, m.pending ? "Sending…" : timeOf(m.sent_at)),
    );
  });
  const list = pane.el.querySelector(".transcript");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...items);
  if (atBottom) list.scrollTop = list.scrollHeight;
  const banner = pane.el.querySelector(".risk-banner");
  if (worst && ["moderate", "medium", "high", "imminent"].includes(worst.level)) {
    banner.hidden = false;
    banner.className = `risk-banner risk-${worst.level}`;
    banner.textContent = `${worst.level.toUpperCase()} RISK — ${(worst.categories || []).join(", ")}. Evidence: ${evidenceText(worst)}. ${
      ["high", "imminent"].includes(worst.level) ? "The duty clinician has been alerted." : ""
    }`;
  } else banner.hidden = true;
}

function wirePane(pane) {
  const el = pane.el;
  const sid = () => pane.session.session;
  const conv = () => pane.session.conversation;
  const textarea = el.querySelector(".send textarea");
  let lastTyping = 0;
  textarea.addEventListener("input", () => {
    if (Date.now() - lastTyping > 3000) {
      lastTyping = Date.now();
      socket.send({ type: "typing", conversation: conv(), state: true });
    }
  });
  textarea.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      el.querySelector(".send").requestSubmit();
    }
  });
  el.querySelector(".send").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = textarea.value.trim();
    if (!body) return;
    store.send(conv(), body);
    textarea.value = "";
    lastTyping = 0;
    socket.send({ type: "typing", conversation: conv(), state: false });
  });
  el.querySelector(".note-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const ta = ev.target.querySelector("textarea");
    try {
      await socket.request({ type: "note.add", session: sid(), body: ta.value });
      ta.value = "";
      ev.target.querySelector(".saved").textContent = "Note saved.";
    } catch (e) {
      announce(e.detail || "Note not saved.", { urgent: true });
    }
  });
  el.querySelector(".transfer-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      await socket.request({ type: "session.transfer", session: sid(), to: Number(f.get("to")), note: f.get("note") || "" });
    } catch (e) {
      if (e.code !== "timeout") announce(e.detail || "Transfer failed.", { urgent: true });
    }
  });
  el.querySelector(".end").addEventListener("click", () => {
    if (confirm("End this chat?")) socket.send({ type: "session.end", session: sid(), reason: "counsellor_ended" });
  });
}

// --- socket -----------------------------------------------------------------------------
socket.on("open", () => socket.send({ type: "queue.list" }));
socket.on("chat.state", (f) => {
  $("#availability").value = f.status || "away";
  $("#capacity").textContent = f.capacity ? `Up to ${f.capacity} chats at once` : "";
  for (const s of f.sessions || []) openPane(s);
});
socket.on("queue.snapshot", renderQueue);
socket.on("queue.updated", renderQueue);
socket.on("session.assigned", (s) => {
  if (s.counsellor && socket.user && s.counsellor.id === socket.user.id) {
    openPane(s);
    announce(`Chat with ${s.young_person.handle} started.`);
  }
});
socket.on("session.transferred", (s) => {
  if (s.counsellor && socket.user && s.counsellor.id === socket.user.id) {
    openPane(s);
    announce(`${s.young_person.handle} was transferred to you. ${s.note ? "Note: " + s.note : ""}`);
  } else {
    closePane(s.session);
    announce(`${s.young_person.handle} was transferred to ${s.to ? s.to.name : "a colleague"}.`);
  }
});
socket.on("session.ended", (s) => {
  if (panes.has(s.session)) {
    announce(`Chat with ${s.young_person.handle} ended.`);
    closePane(s.session);
  }
});
socket.on("counsellor.status", (f) => {
  if (socket.user && f.user && f.user.id === socket.user.id) $("#availability").value = f.status;
});
socket.on("typing", (f) => {
  const sid = byConversation.get(f.conversation);
  const pane = sid && panes.get(sid);
  if (!pane) return;
  const el = pane.el.querySelector(".typing");
  el.textContent = f.state ? `${pane.session.young_person.handle} is typing…` : "";
  clearTimeout(pane.typingTimer);
  if (f.state) pane.typingTimer = setTimeout(() => (el.textContent = ""), 6000);
});

$("#availability").addEventListener("change", async (ev) => {
  try {
    await socket.request({ type: "counsellor.status", status: ev.target.value });
    announce(`Status: ${ev.target.value}`);
  } catch (e) {
    announce(e.detail || "Could not change status.", { urgent: true });
  }
});

// Waiting times tick on even without pushes.
setInterval(() => socket.ready && socket.send({ type: "queue.list" }), 30000);
socket.connect();
