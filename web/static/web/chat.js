import { $, ChatStore, Socket, announce, h, minutes, timeOf } from "./client.js";

const socket = new Socket();
let session = null; // {session, conversation, state, counsellor}
const store = new ChatStore(socket, (conv) => {
  if (session && conv === session.conversation) render();
});

function show(id) {
  for (const s of ["start", "waiting", "chat", "ended"]) $("#" + s).hidden = s !== id;
}

function setSession(frame) {
  const prev = session;
  session = { ...(session || {}), ...frame };
  if (!prev || prev.conversation !== session.conversation) store.track(session.conversation);
  if (session.state === "queued") {
    show("waiting");
    waiting(frame);
  } else if (session.state === "active") {
    show("chat");
    const name = session.counsellor ? session.counsellor.name : "your counsellor";
    $("#chat-title").textContent = `Chat with ${name}`;
    render();
  } else {
    show("ended");
  }
}

function waiting(frame) {
  if (frame.position !== undefined && frame.position !== null) {
    const eta = frame.eta_s ? ` Estimated wait: ${minutes(frame.eta_s)}.` : "";
    $("#position-text").textContent = `You are number ${frame.position} in the queue.${eta}`;
  }
  if (frame.notice) {
    $("#notice").hidden = false;
    $("#notice").textContent = frame.notice;
  }
  if (frame.self_help) {
    $("#self-help").replaceChildren(...frame.self_help.map((s) => h("li", {}, h("strong", {}, s.title), " ", s.body)));
  }
}

function render() {
  if (!session) return;
  const me = socket.user && socket.user.id;
  const items = store.messages(session.conversation).map((m) => {
    const mine = m.sender === me && m.kind !== "system";
    const who = m.kind === "system" ? "Early Help" : mine ? "You" : m.sender_name || "Counsellor";
    return h(
      "li",
      {
        class: `msg ${mine ? "mine" : "theirs"} ${m.kind === "system" ? "system" : ""} ${m.pending ? "pending" : ""}`,
        "data-seq": m.seq,
        "data-client-id": m.client_msg_id,
      },
      h("span", { class: "who" }, who),
      h("p", { class: "body" }, m.body),
      h("span", { class: "meta" }, m.pending ? "Sending…" : timeOf(m.sent_at)),
    );
  });
  const list = $("#transcript");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...items);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

socket.on("chat.state", (f) => {
  if (!f.session) {
    session = null;
    show("start");
    return;
  }
  setSession(f);
});
socket.on("session.queued", setSession);
socket.on("session.state", setSession);
socket.on("session.position", (f) => {
  if (session && f.session === session.session) waiting(f);
});
socket.on("session.assigned", (f) => {
  setSession(f);
  announce(`${f.counsellor ? f.counsellor.name : "A counsellor"} has joined the chat.`);
});
socket.on("session.transferred", (f) => {
  setSession(f);
  announce(`You are now chatting with ${f.counsellor ? f.counsellor.name : "another counsellor"}.`);
});
socket.on("session.ended", (f) => {
  if (session && f.session === session.session) {
    session.state = f.state;
    show("ended");
    announce("The chat has ended.");
  }
});
let typingTimer;
socket.on("typing", (f) => {
  if (!session || f.conversation !== session.conversation) return;
  $("#typing").textContent = f.state ? "Your counsellor is typing…" : "";
  clearTimeout(typingTimer);
  if (f.state) typingTimer = setTimeout(() => ($("#typing").textContent = ""), 6000);
});
socket.on("notification", (n) => {
  if (n.kind === "post_approved") announce("Your forum post has been published.");
  else if (n.kind === "post_rejected") announce("A moderator did not publish your post. See Forums for why.");
});

$("#request-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    await socket.request({ type: "session.request", topic: f.get("topic"), body: f.get("body") });
  } catch (e) {
    announce(e.detail || "Could not reach a counsellor. Please try again.", { urgent: true });
  }
});
$("#cancel").addEventListener("click", () => socket.send({ type: "session.cancel", session: session.session }));
$("#end").addEventListener("click", () => {
  if (confirm("End this chat?")) socket.send({ type: "session.end", session: session.session });
});
$("#again").addEventListener("click", () => {
  if (session) store.forget(session.conversation);
  session = null;
  show("start");
  $("#topic").focus();
});

const input = $("#msg");
let lastTyping = 0;
input.addEventListener("input", () => {
  const now = Date.now();
  if (session && now - lastTyping > 3000) {
    lastTyping = now;
    socket.send({ type: "typing", conversation: session.conversation, state: true });
  }
});
input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) {
    ev.preventDefault();
    $("#send-form").requestSubmit();
  }
});
$("#send-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const body = input.value.trim();
  if (!body || !session) return;
  store.send(session.conversation, body);
  input.value = "";
  lastTyping = 0;
  socket.send({ type: "typing", conversation: session.conversation, state: false });
});

socket.connect();
