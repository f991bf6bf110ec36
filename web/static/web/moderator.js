import { $, Socket, api, announce, h, timeOf } from "./client.js";

const RISK = ["none", "low", "moderate", "high", "imminent"];
const REJECT_REASONS = ["bullying", "hate", "spam", "personal_details", "unsafe_content", "off_topic", "other"];
const socket = new Socket();
let current = null; // item detail being viewed
let snapshotTimer = null;

function renderQueue(name, items, length) {
  $(`#${name}-count`).textContent = length;
  const list = $(`#${name}`);
  list.replaceChildren(
    ...items.map((it) =>
      h(
        "li",
        { class: `queue-item risk-edge-${RISK[it.risk_rank] || "none"}${current && current.id === it.id ? " selected" : ""}`, "data-item": it.id, "data-post": it.post_id },
        h(
          "button",
          { type: "button", class: "item-open", onclick: () => openItem(it.id) },
          `Post #${it.post_id}`,
          it.risk_rank ? h("span", { class: `risk risk-${RISK[it.risk_rank]}` }, `${RISK[it.risk_rank]} risk`) : null,
        ),
        h("div", { class: "hint" }, (it.reasons || []).join(", ").replaceAll("_", " "), it.report_count ? ` · ${it.report_count} report(s)` : "", " · ", timeOf(it.created_at)),
        it.claimed_by ? h("div", { class: "hint" }, socket.user && it.claimed_by === socket.user.id ? "Claimed by you" : "Claimed by a colleague") : null,
      ),
    ),
  );
  if (!items.length) list.append(h("li", { class: "hint" }, "Nothing waiting."));
}

function snapshot() {
  clearTimeout(snapshotTimer);
  snapshotTimer = setTimeout(() => socket.send({ type: "moderation.snapshot" }), 150);
}

async function openItem(id) {
  try {
    current = await api("GET", `moderation/items/${id}/`);
  } catch (e) {
    announce(e.detail || "Could not open the item.", { urgent: true });
    return;
  }
  renderDetail();
  $("#detail").focus();
}

function renderDetail() {
  const it = current;
  const mine = socket.user && it.claimed_by === socket.user.id;
  const active = ["open", "claimed"].includes(it.state);
  $("#detail-title").textContent = `${it.queue === "care" ? "Care" : "Sanction"} item — post #${it.post.id}`;
  const evidence = (it.evidence || []).map((e) => (typeof e === "string" ? e : e.text)).filter(Boolean);
  const body = h(
    "div",
    {},
    h("p", { class: "hint" }, `By ${it.post.author} (${it.post.author_age_band || "age unknown"}) · ${it.post.state} · ${(it.reasons || []).join(", ").replaceAll("_", " ")}`),
    it.risk_rank ? h("p", { class: `risk-banner risk-${RISK[it.risk_rank]}` }, `${RISK[it.risk_rank]} risk${evidence.length ? ": “" + evidence.join("”, “") + "”" : ""}`) : null,
    h("blockquote", { class: "post-body" }, it.post.body),
    it.redaction_suggestion ? h("p", {}, h("strong", {}, "Suggested redaction: "), it.redaction_suggestion) : null,
  );
  if (active && !mine) {
    body.append(h("button", { type: "button", id: "claim", onclick: claim }, it.claimed_by ? "Take over the claim" : "Claim"));
  }
  if (active && mine) body.append(decideForm(it));
  if (!active) body.append(h("p", {}, `Decided: ${it.decision || it.state}`));
  $("#detail-body").replaceChildren(body);
}

function decideForm(it) {
  const form = h(
    "form",
    { id: "decide-form" },
    h("label", { for: "decision" }, "Decision"),
    h(
      "select",
      { id: "decision", name: "decision" },
      ...[
        ["approve", "Approve (publish)"],
        ["approve_edited", "Approve with edits / redaction"],
        ["reject", "Reject"],
        ["escalate", "Escalate to duty clinician"],
        ["warn", "Reject and warn"],
        ["mute", "Reject and mute"],
        ["suspend", "Reject and suspend"],
      ].map(([v, t]) => h("option", { value: v }, t)),
    ),
    h("label", { for: "reason" }, "Reason (for rejections and sanctions)"),
    h("select", { id: "reason", name: "reason" }, h("option", { value: "" }, "—"), ...REJECT_REASONS.map((r) => h("option", { value: r }, r.replaceAll("_", " ")))),
    h("label", { for: "message" }, "Message to the author (optional; a kind default is used otherwise)"),
    h("textarea", { id: "message", name: "message", rows: 2 }),
    h("label", { for: "edited" }, "Edited text (for approve with edits)"),
    h("textarea", { id: "edited", name: "body", rows: 3 }, it.redaction_suggestion || it.post.body),
    h("p", { class: "error", id: "decide-error", role: "alert" }),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Submit decision"), h("button", { type: "button", class: "secondary", onclick: release }, "Release")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const payload = { decision: f.get("decision"), version: current.version, reason: f.get("reason"), message: f.get("message") };
    if (payload.decision === "approve_edited") payload.body = f.get("body");
    try {
      current = await api("POST", `moderation/items/${current.id}/decide/`, payload);
      announce(`Decision recorded: ${payload.decision.replaceAll("_", " ")}.`);
      renderDetail();
      snapshot();
    } catch (e) {
      $("#decide-error").textContent = e.code === "version_conflict" ? "This item changed since you opened it. Reloaded — please check again." : e.detail || e.code;
      if (e.code === "version_conflict") openItem(current.id);
    }
  });
  return form;
}

async function claim() {
  try {
    current = await api("POST", `moderation/items/${current.id}/claim/`);
    renderDetail();
    $("#decision").focus();
  } catch (e) {
    announce(e.detail || "Could not claim.", { urgent: true });
  }
}

async function release() {
  try {
    current = await api("POST", `moderation/items/${current.id}/release/`);
    renderDetail();
  } catch (e) {
    announce(e.detail || "Could not release.", { urgent: true });
  }
}

socket.on("open", () => socket.send({ type: "moderation.snapshot" }));
socket.on("moderation.snapshot", (f) => {
  renderQueue("care", f.items.care, f.lengths.care);
  renderQueue("sanction", f.items.sanction, f.lengths.sanction);
});
socket.on("moderation.item", (f) => {
  if (f.event === "created") announce(`New ${f.item.queue} item.`);
  snapshot();
  if (current && f.item.id === current.id && f.item.version !== current.version) openItem(current.id);
});
socket.connect();
