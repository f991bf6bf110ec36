import { $, Socket, api, announce, h, timeOf } from "./client.js";

const OUTCOMES = [
  ["safety_plan", "Safety plan agreed"],
  ["emergency_services_contacted", "Emergency services contacted"],
  ["safeguarding_referral", "Safeguarding referral"],
  ["counsellor_follow_up", "Counsellor follow-up"],
  ["no_risk_on_review", "No risk on review"],
  ["lost_contact", "Lost contact"],
];
const socket = new Socket();
const open = new Map(); // id -> escalation snapshot
const contexts = new Map(); // id -> context messages
let soundOn = false;
let audio = null;

// --- alert: visible banner, title, and (once allowed by a click) a tone -------------------
function beep() {
  if (!soundOn) return;
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    for (const [i, f] of [880, 660, 880].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.2, now + i * 0.25);
      gain.gain.exponentialRampToValueAtTime(0.001, now + i * 0.25 + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.25);
      osc.stop(now + i * 0.25 + 0.23);
    }
  } catch {
    /* no audio device */
  }
}

function raiseAlert(e) {
  const banner = $("#alert");
  banner.hidden = false;
  banner.dataset.alertFor = e.id;
  banner.textContent = `New ${e.level.toUpperCase()} escalation from ${e.young_person.handle}: “${e.message || ""}” — acknowledge below.`;
  document.title = "⚠ New escalation — Early Help";
  document.body.classList.add("alerting");
  beep();
}

function clearAlertIfDone() {
  const waiting = [...open.values()].some((e) => e.state === "open");
  if (!waiting) {
    $("#alert").hidden = true;
    document.title = "Duty clinician — Early Help";
    document.body.classList.remove("alerting");
  }
}

$("#sound").addEventListener("click", (ev) => {
  soundOn = !soundOn;
  ev.target.setAttribute("aria-pressed", String(soundOn));
  ev.target.textContent = soundOn ? "Sound alerts on" : "Turn on sound alerts";
  if (soundOn) beep();
});

// --- list -------------------------------------------------------------------------------
function render() {
  const items = [...open.values()].sort((a, b) => (a.state === "open" ? 0 : 1) - (b.state === "open" ? 0 : 1) || b.id - a.id);
  $("#esc-count").textContent = items.length;
  $("#escalations").replaceChildren(...items.map(card));
  if (!items.length) $("#escalations").append(h("li", { class: "hint" }, "No open escalations."));
  clearAlertIfDone();
}

function card(e) {
  const mine = socket.user && e.owner && e.owner.id === socket.user.id;
  const evidence = (e.evidence || []).map((x) => (typeof x === "string" ? x : x.text)).filter(Boolean);
  const ctx = contexts.get(e.id);
  const li = h(
    "li",
    { class: `escalation state-${e.state} risk-edge-${e.level}`, "data-escalation": e.id },
    h("h3", {}, h("span", { class: `risk risk-${e.level}` }, e.level), ` ${e.young_person.handle} · ${e.source.type} · ${timeOf(e.created_at)}`),
    h("p", { class: "excerpt" }, `“${e.message || ""}”`),
    h("p", { class: "hint" }, `Categories: ${(e.categories || []).join(", ") || "—"}${evidence.length ? ` · evidence: “${evidence.join("”, “")}”` : ""}`),
    h(
      "p",
      { class: "state" },
      e.state === "open" ? `Waiting for acknowledgement (deadline ${timeOf(e.ack_deadline)}, step ${e.step})` : `Acknowledged by ${e.owner ? e.owner.display_name || e.owner.handle : "—"}`,
    ),
  );
  if (e.state === "open") li.append(h("button", { type: "button", class: "ack", onclick: () => acknowledge(e.id) }, `Acknowledge escalation from ${e.young_person.handle}`));
  li.append(
    h("details", { ontoggle: (ev) => ev.target.open && loadContext(e.id) },
      h("summary", {}, "Context"),
      ctx ? h("ol", { class: "context" }, ...ctx.map((m) => h("li", {}, h("span", { class: "who" }, (m.role || "").replace("_", " ")), " ", m.body || m.text || ""))) : h("p", { class: "hint" }, "Loading…"),
    ),
  );
  if (e.state === "acknowledged" && (mine || document.body.dataset.role === "supervisor")) li.append(resolveForm(e));
  return li;
}

function resolveForm(e) {
  const id = `outcome-${e.id}`;
  const form = h(
    "form",
    { class: "resolve-form" },
    h("label", { for: id }, "Outcome"),
    h("select", { id, name: "outcome", required: true }, h("option", { value: "" }, "Choose an outcome"), ...OUTCOMES.map(([v, t]) => h("option", { value: v }, t))),
    h("label", { for: `${id}-note` }, "Note"),
    h("textarea", { id: `${id}-note`, name: "note", rows: 2 }),
    h("button", { type: "submit" }, "Resolve"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    try {
      const r = await socket.request({ type: "escalation.resolve", escalation: e.id, outcome: f.get("outcome"), note: f.get("note") || "" });
      update(r.escalation);
      announce("Escalation resolved.");
    } catch (err) {
      announce(err.detail || "Could not resolve.", { urgent: true });
    }
  });
  return form;
}

async function loadContext(id) {
  if (contexts.has(id)) return;
  try {
    const detail = await api("GET", `escalations/${id}/`);
    contexts.set(id, detail.context || []);
  } catch {
    contexts.set(id, []);
  }
  render();
}

async function acknowledge(id) {
  try {
    const r = await socket.request({ type: "escalation.acknowledge", escalation: id });
    update(r.escalation);
    announce("Acknowledged. You own this escalation.");
  } catch (e) {
    announce(e.code === "conflict" ? e.detail : e.detail || "Could not acknowledge.", { urgent: true });
    socket.send({ type: "escalation.list" });
  }
}

function update(e) {
  if (!e) return;
  if (e.state === "resolved") open.delete(e.id);
  else open.set(e.id, e);
  render();
}

async function loadDuty() {
  try {
    const d = await api("GET", "rota/on-duty/");
    $("#nobody").hidden = !d.nobody_on_duty;
    $("#on-duty").replaceChildren(...d.on_duty.map((p) => h("li", {}, `${p.display_name || p.handle} — ${p.tier}`)));
    if (!d.on_duty.length) $("#on-duty").append(h("li", { class: "hint" }, "Nobody is on the rota right now."));
  } catch {
    $("#on-duty").replaceChildren(h("li", { class: "hint" }, "Rota unavailable."));
  }
}

socket.on("open", (f) => {
  document.body.dataset.role = f.user.role;
  loadDuty();
});
// Delivery receipts: the server keeps re-sending an escalation until a clinician's page
// confirms it has shown it. Batched, so a burst of redeliveries is one frame.
const receipts = new Set();
let receiptTimer = null;
function confirmShown(ids) {
  for (const id of ids) receipts.add(id);
  if (receiptTimer || !receipts.size) return;
  receiptTimer = setTimeout(() => {
    receiptTimer = null;
    const batch = [...receipts];
    receipts.clear();
    socket.send({ type: "escalation.received", escalations: batch });
  }, 200);
}

socket.on("escalation.list", (f) => {
  confirmShown(f.escalations.filter((e) => e.state === "open").map((e) => e.id));
  open.clear();
  for (const e of f.escalations) open.set(e.id, e);
  $("#nobody").hidden = !f.nobody_on_duty;
  render();
  const waiting = f.escalations.filter((e) => e.state === "open");
  if (waiting.length) raiseAlert(waiting[0]);
});
socket.on("escalation.new", (f) => {
  const e = f.escalation;
  confirmShown([e.id]);
  const known = open.has(e.id);
  if (f.context) contexts.set(e.id, f.context);
  open.set(e.id, e);
  render();
  if (e.state === "open") {
    raiseAlert(e);
    if (!known) announce(`New ${e.level} escalation from ${e.young_person.handle}.`, { urgent: true });
  }
});
for (const t of ["escalation.acknowledged", "escalation.handed_over", "escalation.resolved", "escalation.updated", "escalation.note"]) {
  socket.on(t, (f) => update(f.escalation));
}
setInterval(loadDuty, 60000);
socket.connect();
