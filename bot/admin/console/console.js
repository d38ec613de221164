// Helpline console: plain JavaScript, no build step. Every value from the API is
// put on the page with textContent (answers are typed by migrants: never HTML).
"use strict";

const API = "/admin/api/v1";
const TOKEN_KEY = "helpline.token";
const view = document.getElementById("view");
const flash = document.getElementById("flash");

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function say(message, isError = false) {
  flash.textContent = message;
  flash.className = isError ? "error" : "";
  flash.hidden = !message;
}

function problem(body, status) {
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((d) => `${(d.loc || []).slice(1).join(".") || "body"}: ${d.msg}`).join("; ");
  }
  if (body && body.allowed) return `${body.detail} (allowed: ${body.allowed.join(", ") || "none"})`;
  if (body && body.detail) return String(body.detail);
  return `request failed (${status})`;
}

async function api(method, path, body) {
  const response = await fetch(API + path, {
    method,
    headers: { Authorization: `Bearer ${token()}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (response.status === 401) { signOut("Your token is not valid any more: sign in again."); throw new Error("401"); }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) { const message = problem(data, response.status); say(message, true); throw new Error(message); }
  return data;
}

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function show(templateId) {
  view.replaceChildren(document.getElementById(templateId).content.cloneNode(true));
}

function pretty(reference) { return `${reference.slice(0, 4)}-${reference.slice(4)}`; }
function when(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }

function fill(dl, pairs) {
  dl.replaceChildren();
  for (const [name, value] of pairs) { dl.append(el("dt", name), el("dd", value ?? "—")); }
}

let enums = null;
async function loadEnums() {
  if (enums) return enums;
  try {
    const schemas = (await (await fetch("/openapi.json")).json()).components.schemas;
    enums = { status: schemas.CaseStatus.enum, kind: schemas.CaseKind.enum, priority: schemas.Priority.enum };
  } catch { enums = { status: [], kind: [], priority: [] }; }
  return enums;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById("who").textContent = "";
  document.getElementById("sign-out").hidden = true;
  history.replaceState(null, "", "#/");  // no hashchange: the message stays
  say(message || "");
  route();
}

function renderSignIn() {
  show("sign-in-view");
  document.getElementById("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, new FormData(event.target).get("token").trim());
    try { await api("GET", "/cases?limit=1"); say(""); route(); } catch { /* message shown */ }
  });
}

async function renderQueue() {
  show("queue-view");
  const form = document.getElementById("filters");
  const known = await loadEnums();
  for (const name of ["status", "kind", "priority"]) {
    for (const value of known[name]) form.elements[name].append(el("option", value, { value }));
  }
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  for (const [name, value] of params) if (form.elements[name]) form.elements[name].value = value;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) chosen.set(name, value);
    location.hash = `#/?${chosen}`;
  });
  const list = document.getElementById("cases");
  const more = document.getElementById("more");
  let cursor = null;
  async function page() {
    const query = new URLSearchParams(params);
    query.set("limit", "50");
    if (cursor) query.set("cursor", cursor);
    const data = await api("GET", `/cases?${query}`);
    for (const item of data.items) {
      const link = el("a", null, { href: `#/case/${item.reference}` });
      link.append(
        el("strong", pretty(item.reference)),
        el("span", item.priority, { class: `priority-${item.priority}` }),
        el("span", `${item.kind} · ${item.status}${item.escalated ? ` · escalated ${item.escalation_level}` : ""}${item.assignee ? ` · ${item.assignee}` : ""}`),
        el("span", when(item.created_at)),
      );
      const row = el("li");
      row.append(link);
      list.append(row);
    }
    cursor = data.next_cursor;
    more.hidden = !cursor;
    document.getElementById("empty").hidden = list.children.length > 0 || Boolean(cursor);
  }
  more.addEventListener("click", page);
  await page();
}

async function renderCase(reference) {
  show("case-view");
  const detail = await api("GET", `/cases/${reference}`);
  document.getElementById("case-title").textContent = `Case ${pretty(detail.reference)}`;
  fill(document.getElementById("case-fields"), [
    ["Kind", detail.kind], ["Status", detail.status], ["Priority", detail.priority],
    ["Escalation", detail.escalated ? `level ${detail.escalation_level}` : "no"],
    ["Assignee", detail.assignee], ["Phone", detail.phone], ["Language", detail.language],
    ["Channel", detail.channel],
    ["Consent", detail.consent ? `${when(detail.consent.given_at)} (text ${detail.consent.text_version})` : "—"],
    ["Created", when(detail.created_at)], ["Updated", when(detail.updated_at)],
    ["Erased", detail.erased_at ? when(detail.erased_at) : "no"],
  ]);
  fill(document.getElementById("case-answers"), Object.entries(detail.answers));
  const journal = document.getElementById("case-journal");
  journal.replaceChildren(...detail.journal.map((entry) =>
    el("li", `${when(entry.at)} · ${entry.author} · ${entry.kind}: ${entry.text ?? ""}`)));
  const events = await api("GET", `/cases/${reference}/events`);
  document.getElementById("case-events").replaceChildren(...events.map((event) =>
    el("li", `${when(event.at)} · ${event.actor} · ${event.action}${Object.keys(event.detail).length ? ` ${JSON.stringify(event.detail)}` : ""}`)));

  const statusSelect = document.querySelector("#status-form select");
  statusSelect.replaceChildren(...detail.allowed_next.map((s) => el("option", s, { value: s })));
  document.querySelector("#assign-form [name=priority]").value = detail.priority;
  document.querySelector("#assign-form [name=assignee]").value = detail.assignee || "";

  const act = (formId, call, done) => document.getElementById(formId).addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(event.target));
    try { await call(data); say(done); await renderCase(reference); } catch { /* message shown */ }
  });
  act("status-form", (d) => api("PATCH", `/cases/${reference}`, { status: d.status }), "Status changed.");
  act("assign-form", (d) => api("PATCH", `/cases/${reference}`, { priority: d.priority, assignee: d.assignee || null }), "Saved.");
  act("note-form", (d) => api("POST", `/cases/${reference}/notes`, { text: d.text }), "Note added.");
  act("message-form", (d) => api("POST", `/cases/${reference}/messages`, { text: d.text }), "SMS queued.");
  act("escalate-form", (d) => api("POST", `/cases/${reference}/escalate`, { reason: d.reason, level: Number(d.level) }), "Escalated.");
  act("erase-form", () => (confirm("Erase this case's personal data? This cannot be undone.")
    ? api("DELETE", `/cases/${reference}`) : Promise.reject(new Error("cancelled"))), "Personal data erased.");
}

async function route() {
  const signedIn = Boolean(token());
  document.getElementById("sign-out").hidden = !signedIn;
  if (!signedIn) return renderSignIn();
  const match = location.hash.match(/^#\/case\/(\d{8})$/);
  try {
    if (match) await renderCase(match[1]); else await renderQueue();
  } catch { /* message shown */ }
}

document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", () => { say(""); route(); });
route();
