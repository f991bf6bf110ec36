import { $, Socket, api, announce, h, timeOf } from "./client.js";

const REACTIONS = [
  ["hug", "Hug"],
  ["me_too", "Me too"],
  ["helpful", "Helpful"],
];
const NOTE_TEXT = {
  post_approved: () => "Your post was checked and is now published.",
  post_rejected: (n) => `Your post wasn't published. ${n.message || ""}`,
  reply: (n) => `New reply in “${n.title || "your thread"}”.`,
  care_offer: (n) => n.message || "We noticed you might be finding things hard. You can talk to a counsellor any time.",
  sanction: (n) => n.message || "A moderator has limited your account.",
  appeal_decided: (n) => n.message || "Your appeal has been decided.",
};
const socket = new Socket();
let boards = [];
let board = null;
let thread = null;
let subscribed = null;
let reportPost = null;

function view(name) {
  for (const v of ["boards", "board", "thread"]) $(`#${v}-view`).hidden = v !== name;
}

function go(hash) {
  if (location.hash !== hash) location.hash = hash;
  else route();
}

async function route() {
  const m = location.hash.match(/^#(board|thread)-(\d+)$/);
  if (!m) return showBoards();
  if (m[1] === "board") return showBoard(Number(m[2]));
  return showThread(Number(m[2]));
}

async function showBoards() {
  view("boards");
  if (!boards.length) boards = (await api("GET", "forums/boards/")).results;
  $("#boards").replaceChildren(
    ...boards.map((b) => h("li", {}, h("a", { href: `#board-${b.id}` }, b.name), h("span", { class: "hint" }, ` — ${b.description}`))),
  );
  subscribe(null);
}

async function showBoard(id) {
  if (!boards.length) boards = (await api("GET", "forums/boards/")).results;
  board = boards.find((b) => b.id === id) || { id, name: "Board", description: "" };
  view("board");
  $("#board-title").textContent = board.name;
  $("#board-desc").textContent = board.description;
  const page = await api("GET", `forums/boards/${id}/threads/?limit=50`);
  $("#threads").replaceChildren(
    ...page.results.map((t) =>
      h(
        "li",
        {},
        h("a", { href: `#thread-${t.id}` }, t.title),
        h("span", { class: "hint" }, ` by ${t.author.handle} · ${t.reply_count} replies`),
        t.first_post && t.first_post.waiting ? h("span", { class: "badge" }, "Waiting for a moderator") : null,
      ),
    ),
  );
  if (!page.results.length) $("#threads").append(h("li", { class: "hint" }, "No threads yet. Start one below."));
  subscribe({ board_id: id });
}

async function showThread(id) {
  view("thread");
  thread = await api("GET", `forums/threads/${id}/`);
  if (!board || board.id !== thread.board_id) board = { id: thread.board_id };
  $("#thread-title-h").textContent = thread.title;
  await loadPosts();
  subscribe({ thread_id: id });
}

async function loadPosts() {
  const page = await api("GET", `forums/threads/${thread.id}/posts/?limit=200`);
  $("#posts").replaceChildren(...page.results.map(postItem));
}

function postItem(p) {
  const li = h(
    "li",
    { class: `post state-${p.state}`, id: `post-${p.id}`, "data-post": p.id, "data-state": p.state },
    h("div", { class: "post-head" }, h("strong", {}, p.author.handle), p.author.staff ? h("span", { class: "badge" }, "Staff") : null, h("span", { class: "hint" }, ` ${timeOf(p.created_at)}`)),
    h("p", { class: "body" }, p.deleted ? "(deleted)" : p.body),
  );
  if (p.state === "held") li.append(h("p", { class: "status waiting" }, "Waiting for a moderator to check it. Only you can see it for now."));
  if (p.state === "rejected") li.append(h("p", { class: "status rejected" }, `Not published. ${p.reject_message || ""}`));
  if (p.state === "published" && !p.deleted) {
    const mineR = new Set(p.my_reactions || []);
    li.append(
      h(
        "div",
        { class: "reactions", role: "group", "aria-label": "Reactions" },
        ...REACTIONS.map(([kind, label]) =>
          h("button", { type: "button", class: "react", "aria-pressed": String(mineR.has(kind)), "data-kind": kind, onclick: () => react(p, kind, mineR.has(kind)) }, `${label} ${p.reactions[kind] || 0}`),
        ),
        p.mine ? null : h("button", { type: "button", class: "link report", onclick: () => openReport(p.id) }, "Report"),
      ),
    );
  }
  return li;
}

async function react(p, kind, on) {
  try {
    if (on) await api("DELETE", `forums/posts/${p.id}/reactions/${kind}/`);
    else await api("POST", `forums/posts/${p.id}/reactions/`, { kind });
    await loadPosts();
  } catch (e) {
    announce(e.detail || "Could not react.", { urgent: true });
  }
}

function openReport(postId) {
  reportPost = postId;
  $("#report-form").reset();
  $("#report-dialog").showModal();
}

$("#report-dialog").addEventListener("close", async () => {
  if ($("#report-dialog").returnValue !== "send" || !reportPost) return;
  try {
    await api("POST", "moderation/reports/", { post_id: reportPost, reason: $("#report-reason").value, note: $("#report-note").value });
    announce("Thank you. A moderator will look at it.");
  } catch (e) {
    announce(e.code === "report_exists" ? "You've already reported this post." : e.detail || "Could not send the report.");
  }
});

function subscribe(target) {
  if (subscribed) socket.send({ type: "forum.unsubscribe", ...subscribed });
  subscribed = target;
  if (target) socket.send({ type: "forum.subscribe", ...target });
}

$("#thread-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  $("#thread-error").textContent = "";
  try {
    const t = await api("POST", `forums/boards/${board.id}/threads/`, { title: f.get("title"), body: f.get("body") });
    ev.target.reset();
    if (t.first_post && t.first_post.state === "held") announce("Thanks! A moderator will check your post before it appears.");
    go(`#thread-${t.id}`);
  } catch (e) {
    $("#thread-error").textContent = e.detail || "Could not post.";
  }
});

$("#reply-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  $("#reply-error").textContent = "";
  try {
    const p = await api("POST", `forums/threads/${thread.id}/posts/`, { body: f.get("body") });
    ev.target.reset();
    if (p.state === "held") announce("Thanks! A moderator will check your reply before it appears.");
    await loadPosts();
  } catch (e) {
    $("#reply-error").textContent = e.detail || "Could not post.";
  }
});

for (const b of document.querySelectorAll("[data-back]")) {
  b.addEventListener("click", () => go(b.dataset.back === "board" && board ? `#board-${board.id}` : "#"));
}

// --- notifications ------------------------------------------------------------------------
function noteItem(n) {
  const text = (NOTE_TEXT[n.kind] || (() => n.message || n.kind))(n);
  return h(
    "li",
    { class: `note ${n.read ? "" : "unread"}`, "data-kind": n.kind, "data-post": n.post_id },
    text,
    " ",
    n.thread_id ? h("a", { href: `#thread-${n.thread_id}` }, "View") : null,
    n.kind === "care_offer" ? h("a", { href: "/chat/", class: "button small" }, "Talk to a counsellor") : null,
  );
}

async function loadNotifications() {
  try {
    const page = await api("GET", "forums/notifications/?limit=10");
    $("#notifications").replaceChildren(...page.results.map(noteItem));
    if (!page.results.length) $("#notifications").append(h("li", { class: "hint" }, "Nothing new."));
  } catch {
    /* shown on the next push */
  }
}

socket.on("notification", (n) => {
  const empty = $("#notifications .hint");
  if (empty) empty.remove();
  $("#notifications").prepend(noteItem(n));
  announce((NOTE_TEXT[n.kind] || (() => n.kind))(n));
  if (thread && n.thread_id === thread.id) loadPosts();
});
socket.on("forum.post", (f) => {
  if (thread && f.thread_id === thread.id) loadPosts();
  else if (board && !thread && f.board_id === board.id) showBoard(board.id);
});
socket.on("forum.reactions", (f) => {
  if (thread && f.thread_id === thread.id) loadPosts();
});
socket.on("open", () => {
  if (subscribed) socket.send({ type: "forum.subscribe", ...subscribed });
  loadNotifications();
  if (thread) loadPosts(); // catch up on anything published while disconnected
});

window.addEventListener("hashchange", () => {
  if (!location.hash.startsWith("#thread-")) thread = null;
  route().catch((e) => announce(e.detail || "Could not load.", { urgent: true }));
});
route().catch((e) => announce(e.detail || "Could not load.", { urgent: true }));
socket.connect();
