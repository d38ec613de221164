// Small DOM helpers and the console's shared state.
import { lang, t } from "./i18n.js";

export const state = {
  me: null,            // who is signed in (GET /me)
  cursor: null,        // position in the live changes feed
  fresh: new Map(),    // reference -> {urgent}: cases created since the queue was opened
  drafts: new Map(),   // "operator:reference:field" -> typed text, kept when a session ends by itself
  onChanges: () => {}, // what the page on screen does with live changes
};

// el("p", {class: "x", text: "…", onclick: fn}, child…): text always as text.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "value") node.value = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function show(...nodes) {
  const view = document.getElementById("view");
  view.replaceChildren(...nodes);
  window.scrollTo(0, 0);
}

export function announce(message) {
  const region = document.getElementById("announce");
  region.textContent = "";
  setTimeout(() => { region.textContent = message; }, 50);
}

export function pretty(reference) {
  return /^\d{8}$/.test(reference) ? `${reference.slice(0, 4)}-${reference.slice(4)}` : reference;
}

export function when(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(lang === "fr" ? "fr-FR" : "en-GB", { dateStyle: "medium", timeStyle: "short" });
}

export function clock(ms) {
  const minutes = Math.max(0, Math.floor(ms / 60000));
  if (minutes < 60) return t("minutes", { n: minutes });
  if (minutes < 48 * 60) return t("hours", { h: Math.floor(minutes / 60), m: minutes % 60 });
  return t("days", { n: Math.floor(minutes / 1440) });
}

// A form whose submit runs once at a time: the button is disabled at the first click,
// so a double click submits once. `run` returns {ok, message, focus?}.
export function guarded(form, run) {
  const result = form.querySelector(".result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (form.dataset.busy) return;
    form.dataset.busy = "1";
    const buttons = [...form.querySelectorAll("button")];
    for (const button of buttons) button.disabled = true;
    form.setAttribute("aria-busy", "true");
    result.className = "result";
    result.textContent = t("working");
    let outcome;
    try { outcome = await run(new FormData(form), event.submitter); } finally {
      delete form.dataset.busy;
      form.removeAttribute("aria-busy");
      for (const button of buttons) button.disabled = false;
    }
    if (outcome) showResult(result, outcome.ok, outcome.message);
  });
}

export function showResult(node, ok, message) {
  node.className = ok ? "result ok" : "result error";
  node.setAttribute("role", ok ? "status" : "alert");
  node.textContent = message;
  const box = node.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) node.scrollIntoView({ block: "center" });
}

// How long a case has waited, and where it stands against the SLA (urgent, untaken).
export function waited(iso) { return clock(Date.now() - new Date(iso).getTime()); }

export function slaText(item) {
  const acknowledged = item.status !== "new" || item.assignee;
  if (acknowledged) return t("taken");
  if (item.priority !== "urgent") return t("waiting", { t: waited(item.created_at) });
  const left = new Date(item.created_at).getTime() + state.me.ack_sla_minutes * 60000 - Date.now();
  return left >= 0 ? t("sla_due", { t: clock(left) }) : t("sla_overdue", { t: clock(-left) });
}

export function slaClass(item) {
  if (item.status !== "new" || item.assignee || item.priority !== "urgent") return "";
  const left = new Date(item.created_at).getTime() + state.me.ack_sla_minutes * 60000 - Date.now();
  return left >= 0 ? "sla-due" : "sla-overdue";
}

