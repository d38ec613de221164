// Helpline console: plain JavaScript modules, no build step. Every value from the API
// reaches the page through textContent (answers are typed by migrants: never HTML).
import { api, dropToken, keepToken, problem, token, whenExpired } from "./api.js";
import { label, lang, otherLanguage, setLanguage, t } from "./i18n.js";
import { renderBroadcasts } from "./broadcasts.js";
import { renderCase } from "./case.js";
import { renderDashboard, renderOperators } from "./pages.js";
import { renderReports } from "./reports.js";
import { announce, el, pretty, show, slaClass, slaText, state, waited } from "./ui.js";

const POLL_SECONDS = 5;
const view = document.getElementById("view");

function paintChrome() {
  document.documentElement.lang = lang;
  const unseen = state.fresh.size;
  document.title = (unseen ? `(${unseen}) ` : "") + t("title");
  const header = document.getElementById("top");
  const signedIn = Boolean(state.me);
  const nav = el("nav", { "aria-label": t("title") });
  if (signedIn) {
    const links = [["#/", t("nav_queue")], ["#/mine", t("nav_mine")], ["#/dashboard", t("nav_dashboard")],
                   ["#/broadcasts", t("nav_broadcasts")]];
    if (state.me.role !== "operator") links.push(["#/reports", t("nav_reports")]);
    if (state.me.role === "admin") links.push(["#/operators", t("nav_operators")]);
    const list = el("ul");
    for (const [href, text] of links) {
      const link = el("a", { href, text });
      if (location.hash === href || (href === "#/" && (location.hash === "" || location.hash.startsWith("#/?")))) {
        link.setAttribute("aria-current", "page");
      }
      list.append(el("li", {}, link));
    }
    nav.append(list);
  }
  const tools = el("div", { class: "tools" });
  if (signedIn) {
    tools.append(el("span", { id: "who", text: t("signed_in_as", { name: state.me.name, role: label("role", state.me.role) }) }));
  }
  tools.append(el("button", { type: "button", id: "language", class: "secondary", lang: otherLanguage(),
                              "aria-label": t("language_switch_label"), text: t("language_switch"),
                              onclick: () => { setLanguage(otherLanguage()); route(); } }));
  if (signedIn) tools.append(el("button", { type: "button", id: "sign-out", class: "secondary", text: t("sign_out"),
                                            onclick: () => signOut(t("signed_out"), { home: true }) }));
  header.replaceChildren(el("a", { href: "#/", class: "brand", text: t("title") }), nav, tools);
}

// --- session -------------------------------------------------------------------

let pollTimer = null;
let idleTimer = null;
let lastActivity = Date.now();

function signOut(message, { home = false, isError = false } = {}) {
  view.replaceChildren();  // personal data leaves the screen at once
  dropToken();
  state.me = null;
  state.cursor = null;
  state.fresh.clear();
  clearInterval(pollTimer);
  clearInterval(idleTimer);
  if (home) {  // signing out on purpose leaves nothing typed behind
    state.drafts.clear();
    history.replaceState(null, "", "#/");
  }
  renderSignIn(message, isError);
}

whenExpired(() => { if (state.me) signOut(t("session_ended"), { isError: true }); });

function startSession(me) {
  state.me = me;
  lastActivity = Date.now();
  clearInterval(idleTimer);
  idleTimer = setInterval(() => {
    if (state.me && Date.now() - lastActivity > state.me.idle_minutes * 60000) {
      signOut(t("idle_signed_out", { n: state.me.idle_minutes }), { isError: true });
    }
  }, 5000);
  clearInterval(pollTimer);
  pollTimer = setInterval(poll, POLL_SECONDS * 1000);
  poll();
}

for (const name of ["keydown", "pointerdown", "input", "wheel"]) {
  document.addEventListener(name, () => { lastActivity = Date.now(); }, { passive: true, capture: true });
}

function beep() {
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.frequency.value = 880;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.25);
  } catch { /* no sound device */ }
}

async function poll() {
  if (!state.me) return;
  const result = await api("GET", state.cursor ? `/changes?after=${encodeURIComponent(state.cursor)}` : "/changes");
  if (!result.ok || !state.me) return;
  const first = state.cursor === null;
  state.cursor = result.data.cursor;
  if (first || !result.data.items.length) return;
  let urgent = false;
  const mine = `operator:${state.me.name}`;
  const news = [];
  for (const change of result.data.items) {
    if (change.action === "created") {
      const isUrgent = change.detail.priority === "urgent";
      state.fresh.set(change.reference, { urgent: isUrgent });
      urgent = urgent || isUrgent;
      news.push(t(isUrgent ? "new_urgent_announce" : "new_case_announce",
                  { ref: pretty(change.reference), kind: label("kind", change.detail.kind) }));
    }
  }
  if (news.length) announce(news.join(" "));
  if (urgent && localStorage.getItem("helpline.sound") === "on") beep();
  paintChrome();
  state.onChanges(result.data.items.filter((c) => c.actor !== mine));
}

// --- sign-in ---------------------------------------------------------------------

function renderSignIn(message = "", isError = false) {
  paintChrome();
  const error = el("p", { id: "sign-in-message", class: isError ? "message error" : "message", role: isError ? "alert" : "status",
                          text: message });
  error.hidden = !message;
  const input = el("input", { id: "token", name: "token", type: "password", autocomplete: "current-password",
                              required: true, "aria-describedby": "sign-in-message sign-in-hint" });
  const button = el("button", { type: "submit", text: t("sign_in_button") });
  const form = el("form", { id: "sign-in", class: "card narrow", "aria-labelledby": "sign-in-title" },
    el("h1", { id: "sign-in-title", text: t("sign_in") }),
    el("label", { for: "token", text: t("token") }), input, error, button,
    el("p", { id: "sign-in-hint", class: "hint", text: t("sign_in_hint") }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    const typed = input.value.trim();
    const result = await api("GET", "/me", null, { bearer: typed });
    button.disabled = false;
    if (result.ok) {
      keepToken(typed);
      startSession(result.data);
      route();
      return;
    }
    error.hidden = false;
    error.className = "message error";
    error.setAttribute("role", "alert");
    error.textContent = result.status === 401 ? t("bad_token") : problem(result);
    input.focus();
    input.select();
  });
  show(form);
  input.focus();
}

// --- queue -----------------------------------------------------------------------

const FILTERS = {
  status: ["new", "contacted", "in_progress", "referred", "return_arranged", "returned", "closed", "withdrawn"],
  kind: ["return_request", "callback", "emergency"],
  priority: ["urgent", "high", "normal"],
};

export function caseRow(item) {
  const fresh = state.fresh.get(item.reference);
  const reasons = (item.priority_reasons || []).map((r) => label("reason", r)).join(", ");
  const link = el("a", { href: `#/case/${item.reference}`, class: "case-link" },
    el("span", { class: "ref" }, pretty(item.reference),
       fresh ? el("span", { class: "badge-new", text: t("new_badge") }) : null),
    el("span", { class: `priority priority-${item.priority}`,
                 text: label("priority", item.priority) + (reasons ? ` · ${reasons}` : "") }),
    el("span", { class: "summary",
                 text: `${label("kind", item.kind)} · ${label("status", item.status)} · ${label("channel", item.channel)}, ${label("lang", item.language)}` +
                       (item.escalated ? ` · ${t("escalation")} ${t("level", { n: item.escalation_level })}` : "") +
                       (item.matched_by ? ` · ${t(`matched_${item.matched_by}`)}` : "") }),
    el("span", { class: `meta ${slaClass(item)}`.trim(),
                 text: `${t("age", { t: waited(item.created_at) })} · ${slaText(item)} · ${t("assigned_to", { name: item.assignee || t("unassigned") })}` }));
  return el("li", { class: fresh ? "case-row fresh" : "case-row", "data-reference": item.reference }, link);
}

function queueParams() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  if (location.hash.startsWith("#/mine")) params.set("assignee", state.me.name);
  return params;
}

async function renderQueue() {
  const params = queueParams();
  const mine = location.hash.startsWith("#/mine");
  const q = params.get("q") || "";
  const assignees = await api("GET", "/assignees");
  if (!state.me) return;

  const searchInput = el("input", { id: "q", name: "q", type: "search", value: q, autocomplete: "off" });
  const search = el("form", { role: "search", class: "search", "aria-label": t("search") },
    el("label", { for: "q", text: t("search_label") }),
    el("div", { class: "row" }, searchInput, el("button", { type: "submit", text: t("search_button") })));
  search.addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = searchInput.value.trim();
    location.hash = typed ? `#/?q=${encodeURIComponent(typed)}` : "#/";
  });

  const filters = el("form", { id: "filters", class: "filters", "aria-label": t("filters") });
  for (const name of ["status", "kind", "priority"]) {
    const select = el("select", { id: `f-${name}`, name },
      el("option", { value: "", text: t("any") }),
      ...FILTERS[name].map((value) => el("option", { value, text: label(name, value) })));
    select.value = params.get(name) || "";
    filters.append(el("div", {}, el("label", { for: `f-${name}`, text: t(name) }), select));
  }
  const escalated = el("select", { id: "f-escalated", name: "escalated" },
    el("option", { value: "", text: t("any") }), el("option", { value: "true", text: t("yes") }),
    el("option", { value: "false", text: t("no") }));
  escalated.value = params.get("escalated") || "";
  const names = assignees.ok ? assignees.data.map((a) => a.name) : [];
  const assignee = el("select", { id: "f-assignee", name: "assignee" },
    el("option", { value: "", text: t("any") }),
    ...names.map((name) => el("option", { value: name, text: name === state.me.name ? `${name} (${t("me")})` : name })));
  assignee.value = params.get("assignee") || "";
  filters.append(el("div", {}, el("label", { for: "f-escalated", text: t("escalated") }), escalated),
                 el("div", {}, el("label", { for: "f-assignee", text: t("assignee") }), assignee),
                 el("button", { type: "submit", text: t("filter") }));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [name, value] of new FormData(filters)) if (value) chosen.set(name, value);
    location.hash = `#/?${chosen}`;
  });

  const sound = el("input", { type: "checkbox", id: "sound" });
  sound.checked = localStorage.getItem("helpline.sound") === "on";
  sound.addEventListener("change", () => localStorage.setItem("helpline.sound", sound.checked ? "on" : "off"));
  const newBar = el("div", { id: "new-bar", class: "new-bar" });
  const status = el("p", { id: "queue-status", role: "status", class: "message" });
  const list = el("ul", { id: "cases", class: "cases", "aria-labelledby": "queue-title" });
  const more = el("button", { type: "button", id: "more", class: "secondary", text: t("more") });
  more.hidden = true;

  show(el("h1", { id: "queue-title", text: q ? t("search") : (mine ? t("my_cases") : t("queue")) }),
       search, q ? el("p", {}, el("a", { href: "#/", text: t("clear_search") })) : filters,
       el("p", { class: "hint live" }, t("live_on", { s: POLL_SECONDS }), " ",
          el("label", { class: "inline" }, sound, ` ${t("sound")}`)),
       newBar, status, list, more);

  function paintNewBar() {
    newBar.replaceChildren();
    if (!state.fresh.size) return;
    newBar.append(el("span", { text: t("new_cases", { n: state.fresh.size }) }),
      el("button", { type: "button", class: "secondary", text: t("mark_seen"),
                     onclick: () => { state.fresh.clear(); paintChrome(); load(); } }));
  }

  let cursor = null;
  let shown = 0;
  async function page(reset) {
    if (q) {
      const query = new URLSearchParams({ q });
      if (!reset && cursor) query.set("cursor", cursor);
      const result = await api("GET", `/search?${query}`);
      if (!state.me) return;
      if (!result.ok) { status.textContent = problem(result); status.className = "message error"; return; }
      if (reset) list.replaceChildren();
      list.append(...result.data.items.map(caseRow));
      cursor = result.data.name_cursor;
      more.textContent = t("search_more");
      more.hidden = !cursor;
      status.textContent = list.children.length ? t("found", { n: list.children.length, q }) : t("found_none", { q });
      return;
    }
    const query = new URLSearchParams(params);
    query.set("limit", String(reset ? Math.min(100, Math.max(50, shown)) : 50));
    if (!reset && cursor) query.set("cursor", cursor);
    const result = await api("GET", `/cases?${query}`);
    if (!state.me) return;
    if (!result.ok) { status.textContent = problem(result); status.className = "message error"; return; }
    const focused = document.activeElement && document.activeElement.closest("li[data-reference]");
    if (reset) list.replaceChildren();
    list.append(...result.data.items.map(caseRow));
    if (focused) {  // a refresh keeps the operator's place
      const again = list.querySelector(`li[data-reference="${focused.dataset.reference}"] a`);
      if (again) again.focus({ preventScroll: true });
    }
    shown = list.children.length;
    cursor = result.data.next_cursor;
    more.hidden = !cursor;
    status.textContent = shown || cursor ? "" : t("none_match");
  }
  async function load() { paintNewBar(); await page(true); }
  more.addEventListener("click", () => page(false));
  state.onChanges = () => { if (!q) load(); else paintNewBar(); };
  await load();
}

// --- routing -----------------------------------------------------------------------

async function route() {
  state.onChanges = () => {};
  if (!token()) { state.me = null; renderSignIn(); return; }
  if (!state.me) {
    const me = await api("GET", "/me");
    if (!me.ok) {
      if (me.status === 401) dropToken();
      renderSignIn(me.status === 401 ? t("session_ended") : problem(me), true);
      return;
    }
    startSession(me.data);
  }
  paintChrome();
  const hash = location.hash || "#/";
  const match = hash.match(/^#\/case\/(.*)$/);
  const mainHeading = () => { const h1 = view.querySelector("h1"); if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); } };
  if (match) {
    state.fresh.delete(decodeURIComponent(match[1]).replace(/[-\s]/g, ""));
    paintChrome();
    await renderCase(decodeURIComponent(match[1]));
  } else if (hash.startsWith("#/dashboard")) await renderDashboard();
  else if (hash.startsWith("#/operators")) await renderOperators();
  else if (hash.startsWith("#/reports")) await renderReports();
  else if (hash.startsWith("#/broadcasts")) await renderBroadcasts();
  else await renderQueue();
  if (state.me && !view.contains(document.activeElement)) mainHeading();
}

window.addEventListener("hashchange", () => route());
setLanguage(lang);
route();
