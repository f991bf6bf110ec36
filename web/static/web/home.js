import { api, $ } from "./client.js";

const HOME = {
  young_person: "/chat/",
  counsellor: "/counsellor/",
  supervisor: "/counsellor/",
  moderator: "/moderator/",
  clinician: "/clinician/",
  admin: "/moderator/",
};

function next(user) {
  const wanted = new URLSearchParams(location.search).get("next");
  // Only same-site paths: never an open redirect.
  if (wanted && /^\/[a-z]+\/$/.test(wanted)) return wanted;
  return HOME[user.role] || "/";
}

const MESSAGES = {
  handle_taken: "That username is taken. Try another.",
  authentication_failed: "That username and password don't match.",
  too_young: "Sorry, this service is for people aged 10 to 25.",
  too_old: "Sorry, this service is for people aged 10 to 25.",
  throttled: "Too many tries. Please wait a minute.",
};

function showError(el, err) {
  el.textContent = MESSAGES[err.code] || err.detail || "Something went wrong. Please try again.";
}

async function signIn(handle, password) {
  const { user } = await api("POST", "auth/login/", { handle, password, session: true });
  location.assign(next(user));
}

const reg = $("#register-form");
if (reg) {
  reg.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(reg);
    const err = $("#register-error");
    err.textContent = "";
    try {
      await api("POST", "auth/register/", {
        handle: f.get("handle").trim(),
        password: f.get("password"),
        birth_year: Number(f.get("birth_year")),
        birth_month: Number(f.get("birth_month")),
      });
      await signIn(f.get("handle").trim(), f.get("password"));
    } catch (e) {
      showError(err, e);
    }
  });
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const err = $("#login-error");
    err.textContent = "";
    try {
      await signIn(f.get("handle").trim(), f.get("password"));
    } catch (e) {
      showError(err, e);
    }
  });
}
