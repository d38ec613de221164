// The case page: fields, answers in the flow's words and order, actions, journal, history.
import { api, problem } from "./api.js";
import { label, lang, t } from "./i18n.js";
import { referralForm, referralList } from "./referral.js";
import { MAX_SEGMENTS, measure } from "./sms.js";
import { announce, el, guarded, pretty, show, showResult, slaText, state, waited, when } from "./ui.js";
import { followupSection } from "./case_followups.js";

const cache = { labels: null, replies: null };
const LEVELS = [1, 2];

async function once(key, path) {
  if (!cache[key]) {
    const result = await api("GET", path);
    if (result.ok) cache[key] = result.data;
  }
  return cache[key] || [];
}

function words(texts) { return (texts && (texts[lang] || texts.fr || texts.en)) || ""; }

function fill(dl, pairs) {
  dl.replaceChildren();
  for (const [name, value] of pairs) dl.append(el("dt", { text: name }), el("dd", { text: value ?? "—" }));
}

function answerPairs(answers, labels) {
  const pairs = [];
  const seen = new Set();
  for (const entry of labels) {
    if (!(entry.field in answers)) continue;
    seen.add(entry.field);
    const value = answers[entry.field];
    pairs.push([words(entry.label), entry.values[value] ? words(entry.values[value]) : value]);
  }
  for (const [field, value] of Object.entries(answers)) {
    if (!seen.has(field)) pairs.push([field.replaceAll("_", " "), value]);
  }
  return pairs;
}

function actorName(actor) {
  if (actor.startsWith("operator:")) return actor.slice("operator:".length);
  return label("actor", actor);
}

function describe(event) {
  const d = event.detail || {};
  const v = (prefix, value) => (value === null || value === undefined ? t("unassigned")
    : prefix ? label(prefix, value) : String(value));
  switch (event.action) {
    case "created": return t("ev_created", { kind: label("kind", d.kind), channel: label("channel", d.channel) });
    case "status_changed": return t("ev_status_changed", { from: v("status", d.from), to: v("status", d.to) });
    case "priority_changed": return t("ev_priority_changed", { from: v("priority", d.from), to: v("priority", d.to) });
    case "assigned": return t("ev_assigned", { from: v("", d.from), to: v("", d.to) });
    case "escalated": return t("ev_escalated", { from: d.from ?? 0, to: d.to });
    case "note_added": case "message_queued": case "erased": case "read": return t(`ev_${event.action}`);
    case "referred": return t("ev_referred", { consent: label("consent", d.consent) });
    default: return label("ev", event.action);
  }
}

// One line an event; consecutive reads by one person become one line.
function auditLines(events) {
  const lines = [];
  for (const event of events) {
    const last = lines[lines.length - 1];
    if (event.action === "read" && last && last.read && last.actor === event.actor) {
      last.count += 1;
      last.to = event.at;
      continue;
    }
    lines.push({ read: event.action === "read", actor: event.actor, from: event.at, to: event.at, count: 1, event });
  }
  return lines.map((line) => {
    const what = line.read && line.count > 1
      ? t("ev_read_group", { n: line.count, from: when(line.from), to: when(line.to) })
      : describe(line.event);
    return el("li", {}, el("time", { datetime: line.from, text: when(line.from) }), " — ",
              el("strong", { text: actorName(line.actor) }), ` ${what}`);
  });
}

// Typed text is kept per operator: another person signing in on this tab does not get it.
function draftKey(reference, field) { return `${state.me ? state.me.name : ""}:${reference}:${field}`; }

function keepDraft(reference, field, control) {
  const saved = state.drafts.get(draftKey(reference, field));
  if (saved) control.value = saved;
  control.addEventListener("input", () => state.drafts.set(draftKey(reference, field), control.value));
}

function actionForm(id, title, ...controls) {
  return el("form", { id, class: "action", "aria-labelledby": `${id}-title` },
    el("h3", { id: `${id}-title`, text: title }), ...controls,
    el("p", { class: "result", role: "status", "aria-live": "polite" }));
}

function renderNotFound(raw) {
  show(el("p", {}, el("a", { href: "#/", text: t("back_to_queue") })),
       el("h1", { id: "case-title", text: t("not_found") }),
       el("p", { class: "message error", role: "alert", text: t("not_found_text", { ref: raw }) }));
}

export async function renderCase(raw, after = null) {
  const others = Promise.all([once("labels", "/flow/answers"), once("replies", "/replies"),
                              api("GET", "/assignees")]);
  const detail = await api("GET", `/cases/${encodeURIComponent(raw)}`);
  // The history is read after the case, so it shows this very read.
  const events = detail.ok ? await api("GET", `/cases/${encodeURIComponent(raw)}/events`) : detail;
  const [labels, replies, people] = await others;
  if (!state.me) return;
  if (detail.status === 404 || detail.status === 422) { renderNotFound(raw); return; }
  if (!detail.ok) {
    show(el("h1", { id: "case-title", text: t("case_title", { ref: pretty(raw) }) }),
         el("p", { class: "message error", role: "alert", text: problem(detail) }));
    return;
  }
  const c = detail.data;
  const ref = c.reference;
  const reload = (formId, message, ok = true) => renderCase(ref, { formId, message, ok });
  const reasons = (c.priority_reasons || []).map((r) => label("reason", r)).join(", ");

  // Case fields, answers.
  const fields = el("dl", { id: "case-fields" });
  fill(fields, [
    [t("kind"), label("kind", c.kind)], [t("status"), label("status", c.status)],
    [t("priority"), label("priority", c.priority) + (reasons ? ` (${reasons})` : "")],
    [t("escalation"), c.escalated ? t("level", { n: c.escalation_level }) : t("not_escalated")],
    [t("assignee"), c.assignee || t("unassigned")], [t("phone"), c.phone],
    [t("language"), label("lang", c.language)], [t("channel"), label("channel", c.channel)],
    [t("consent"), c.consent ? t("consent_given", { at: when(c.consent.given_at), v: c.consent.text_version }) : "—"],
    [t("created"), when(c.created_at)], [t("updated"), when(c.updated_at)],
    [t("erased"), c.erased_at ? when(c.erased_at) : t("no")],
  ]);
  const answers = el("dl", { id: "case-answers" });
  const pairs = answerPairs(c.answers || {}, labels);
  if (pairs.length) fill(answers, pairs); else answers.append(el("dd", { text: t("no_answers") }));

  // Status: nothing chosen until the operator chooses.
  const statusSelect = el("select", { id: "new-status", name: "status", required: true },
    el("option", { value: "", text: t("choose") }),
    ...c.allowed_next.map((s) => el("option", { value: s, text: label("status", s) })));
  statusSelect.value = "";
  const statusButton = el("button", { type: "submit", text: t("status_button"), disabled: true });
  statusSelect.addEventListener("change", () => { statusButton.disabled = !statusSelect.value; });
  const statusForm = c.allowed_next.length
    ? actionForm("status-form", t("change_status"), el("label", { for: "new-status", text: t("new_status") }),
                 el("div", { class: "row" }, statusSelect, statusButton))
    : actionForm("status-form", t("change_status"), el("p", { class: "hint", text: t("no_next_status") }));
  if (c.allowed_next.length) {
    guarded(statusForm, async (data) => {
      const result = await api("PATCH", `/cases/${ref}`, { status: data.get("status") });
      if (!result.ok) return { ok: false, message: problem(result) };
      await reload("status-form", t("status_done", { s: label("status", data.get("status")) }));
      return null;
    });
  }

  // Assignment: to me, or to a real operator from the picker.
  const names = people.ok ? people.data.map((p) => p.name) : [];
  const picker = el("select", { id: "assignee", name: "assignee" },
    el("option", { value: "", text: t("unassigned") }),
    ...names.map((name) => el("option", { value: name, text: name === state.me.name ? `${name} (${t("me")})` : name })));
  picker.value = c.assignee || "";
  const assignForm = actionForm("assign-form", t("assign"),
    el("div", { class: "row" },
       el("button", { type: "submit", name: "to", value: "me", class: "secondary", id: "assign-me", text: t("assign_me"),
                      disabled: c.assignee === state.me.name })),
    el("label", { for: "assignee", text: t("assign_to") }),
    el("div", { class: "row" }, picker, el("button", { type: "submit", name: "to", value: "picked", text: t("assign_button") })));
  guarded(assignForm, async (data, submitter) => {
    const name = submitter && submitter.value === "me" ? state.me.name : data.get("assignee") || null;
    const result = await api("PATCH", `/cases/${ref}`, { assignee: name });
    if (!result.ok) return { ok: false, message: problem(result) };
    await reload("assign-form", name ? t("assign_done", { name }) : t("unassign_done"));
    return null;
  });

  const prioritySelect = el("select", { id: "priority", name: "priority" },
    ...["urgent", "high", "normal"].map((p) => el("option", { value: p, text: label("priority", p) })));
  prioritySelect.value = c.priority;
  const priorityButton = el("button", { type: "submit", text: t("priority_button"), disabled: true });
  prioritySelect.addEventListener("change", () => { priorityButton.disabled = prioritySelect.value === c.priority; });
  const priorityForm = actionForm("priority-form", t("priority"),
    el("label", { for: "priority", text: t("new_priority") }), el("div", { class: "row" }, prioritySelect, priorityButton));
  guarded(priorityForm, async (data) => {
    const result = await api("PATCH", `/cases/${ref}`, { priority: data.get("priority") });
    if (!result.ok) return { ok: false, message: problem(result) };
    await reload("priority-form", t("priority_done", { p: label("priority", data.get("priority")) }));
    return null;
  });

  // Note.
  const note = el("textarea", { id: "note", name: "text", rows: 3, required: true, maxlength: 4000 });
  keepDraft(ref, "note", note);
  const noteForm = actionForm("note-form", t("note"), el("label", { for: "note", text: t("note_text") }), note,
                              el("button", { type: "submit", text: t("note_button") }));
  guarded(noteForm, async (data) => {
    const result = await api("POST", `/cases/${ref}/notes`, { text: data.get("text") });
    if (!result.ok) return { ok: false, message: problem(result) };
    state.drafts.delete(draftKey(ref, "note"));
    await reload("note-form", t("note_done"));
    return null;
  });

  // SMS, with canned replies in the case's language and a live length counter.
  const sms = el("textarea", { id: "sms", name: "text", rows: 3, required: true, "aria-describedby": "sms-counter" });
  keepDraft(ref, "sms", sms);
  const counter = el("p", { id: "sms-counter", class: "hint" });
  const sendButton = el("button", { type: "submit", text: t("sms_button") });
  const count = () => {
    const m = measure(sms.value);
    const over = m.segments > MAX_SEGMENTS;
    counter.textContent = t("counter", { n: m.chars, s: m.segments, enc: m.encoding }) + (over ? ` — ${t("too_long")}` : "");
    counter.className = over ? "hint error" : "hint";
    sendButton.disabled = over;
  };
  sms.addEventListener("input", count);
  const canned = el("select", { id: "canned" }, el("option", { value: "", text: t("canned_none") }),
    ...replies.map((reply) => el("option", { value: reply.id, text: reply.texts[c.language] || reply.texts.fr })));
  canned.addEventListener("change", () => {
    const chosen = replies.find((reply) => reply.id === canned.value);
    if (!chosen) return;
    sms.value = chosen.texts[c.language] || chosen.texts.fr;
    state.drafts.set(draftKey(ref, "sms"), sms.value);
    count();
    sms.focus();
  });
  const notSafe = (c.answers || {}).sms_safe === "no";
  const smsForm = actionForm("message-form", t("sms"),
    notSafe ? el("p", { class: "message warning", text: t("sms_not_safe_warning") }) : null,
    el("label", { for: "canned", text: t("canned") }), canned,
    el("label", { for: "sms", text: t("sms_text") }), sms, counter, sendButton);
  count();
  guarded(smsForm, async (data) => {
    const result = await api("POST", `/cases/${ref}/messages`, { text: data.get("text") });
    if (!result.ok) return { ok: false, message: problem(result) };
    state.drafts.delete(draftKey(ref, "sms"));
    await reload("message-form", t("sms_done"));
    return null;
  });

  // Escalation: only to a level above the present one.
  const higher = LEVELS.filter((level) => level > c.escalation_level);
  let escalateForm;
  if (higher.length) {
    const reason = el("input", { id: "escalate-reason", name: "reason", required: true, maxlength: 4000 });
    keepDraft(ref, "reason", reason);
    escalateForm = actionForm("escalate-form", t("escalate"),
      el("label", { for: "escalate-reason", text: t("escalate_reason") }), reason,
      el("label", { for: "escalate-level", text: t("escalate_level") }),
      el("div", { class: "row" },
         el("select", { id: "escalate-level", name: "level" },
            ...higher.map((level) => el("option", { value: level, text: t("level", { n: level }) }))),
         el("button", { type: "submit", text: t("escalate_button") })));
    guarded(escalateForm, async (data) => {
      const level = Number(data.get("level"));
      const result = await api("POST", `/cases/${ref}/escalate`, { reason: data.get("reason"), level });
      if (!result.ok) return { ok: false, message: problem(result) };
      state.drafts.delete(draftKey(ref, "reason"));
      await reload("escalate-form", t("escalate_done", { n: level }));
      return null;
    });
  } else {
    escalateForm = actionForm("escalate-form", t("escalate"), el("p", { class: "hint", text: t("escalate_max") }));
  }

  // Erasure: supervisors only, saying what goes and what stays, confirmed on the page.
  let eraseForm = null;
  if (state.me.role !== "operator" && !c.erased_at) {
    const confirm = el("div", { class: "row confirm", id: "erase-confirm" },
      el("button", { type: "submit", class: "danger", id: "erase-yes", text: t("erase_confirm") }),
      el("button", { type: "button", class: "secondary", id: "erase-cancel", text: t("cancel") }));
    confirm.hidden = true;
    const start = el("button", { type: "button", class: "danger", id: "erase-start", text: t("erase_button") });
    eraseForm = actionForm("erase-form", t("erase"), el("p", { id: "erase-explain", text: t("erase_explain") }), start, confirm);
    start.addEventListener("click", () => { confirm.hidden = false; start.hidden = true; confirm.querySelector("#erase-yes").focus(); });
    confirm.querySelector("#erase-cancel").addEventListener("click", () => {
      confirm.hidden = true; start.hidden = false; start.focus();
      showResult(eraseForm.querySelector(".result"), true, t("erase_cancelled"));
    });
    guarded(eraseForm, async () => {
      const result = await api("DELETE", `/cases/${ref}`);
      if (!result.ok) return { ok: false, message: problem(result) };
      await reload("erase-form", t("erase_done"));
      return null;
    });
  }

  const journal = el("ol", { id: "case-journal", class: "trail" },
    ...c.journal.map((entry) => el("li", {}, el("time", { datetime: entry.at, text: when(entry.at) }), " — ",
      el("strong", { text: actorName(entry.author) }), ` · ${t(`journal_${entry.kind}`)} : `, entry.text)));
  const history = el("ol", { id: "case-events", class: "trail" }, ...(events.ok ? auditLines(events.data) : []));
  const changed = el("div", { id: "case-changed", class: "message warning", role: "status" });
  changed.hidden = true;

  show(el("p", {}, el("a", { href: "#/", text: t("back_to_queue") })),
       el("h1", { id: "case-title", text: t("case_title", { ref: pretty(ref) }) }),
       el("p", { class: "sub", text: `${label("kind", c.kind)} · ${label("status", c.status)} · ${label("priority", c.priority)}` +
                                   ` · ${t("age", { t: waited(c.created_at) })} · ${slaText(c)}` }),
       changed,
       el("div", { class: "grid" },
          el("section", { class: "card", "aria-labelledby": "h-case" },
             el("h2", { id: "h-case", text: t("case_section") }), fields,
             el("h2", { id: "h-answers", text: t("answers") }), answers),
          el("section", { class: "card", "aria-labelledby": "h-actions", id: "actions" },
             el("h2", { id: "h-actions", text: t("actions") }),
             statusForm, assignForm, priorityForm, noteForm, smsForm, escalateForm,
             referralForm(c, reload), eraseForm),
          el("section", { class: "card wide", "aria-labelledby": "h-referrals" },
             el("h2", { id: "h-referrals", text: t("referrals") }), referralList(c)),
          followupSection(c, reload),
          el("section", { class: "card wide", "aria-labelledby": "h-journal" },
             el("h2", { id: "h-journal", text: t("journal") }),
             c.journal.length ? journal : el("p", { class: "hint", text: t("journal_empty") })),
          el("section", { class: "card wide", "aria-labelledby": "h-audit" },
             el("h2", { id: "h-audit", text: t("audit") }),
             events.ok && events.data.length ? history : el("p", { class: "hint", text: t("audit_empty") }))));

  state.onChanges = (changes) => {
    if (changes.some((change) => change.reference === ref)) {
      changed.replaceChildren(el("span", { text: `${t("case_changed")} ` }),
        el("button", { type: "button", class: "secondary", text: t("reload"), onclick: () => renderCase(ref) }));
      changed.hidden = false;
    }
  };

  if (after) {
    const form = document.getElementById(after.formId);
    if (form) {
      const target = form.querySelector("textarea, input, select, button:not([disabled])");
      if (target) target.focus({ preventScroll: true });
      showResult(form.querySelector(".result"), after.ok, after.message);
    }
    announce(after.message);
  }
}
