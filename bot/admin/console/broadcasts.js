// Broadcasts: supervisors write an alert (a segment counter per language, the recipients'
// count as they choose), another supervisor approves it; everyone sees the progress.
import { api, problem } from "./api.js";
import { addWords, label, lang, t } from "./i18n.js";
import { MAX_SEGMENTS, measure } from "./sms.js";
import { el, guarded, show, showResult, state, when } from "./ui.js";

const LANGUAGES = ["fr", "en", "bm"];
const COUNTRIES = ["ML", "NE", "DZ", "LY", "MR", "SN", "ZZ"];
const OPEN = new Set(["awaiting_approval", "scheduled", "sending"]);
const REFRESH_SECONDS = 5;
// As SMS writes them (bot/flows/model.py GSM7_SPELLING for Bambara; the flow writes ç as c):
// the count is the one the API checks (it answers 422 past 3 segments all the same).
const SPELLING = {
  bm: { "ɛ": "è", "Ɛ": "E", "ɔ": "ò", "Ɔ": "O", "ɲ": "ny", "Ɲ": "Ny", "ŋ": "ng", "Ŋ": "Ng",
        "’": "'", "‘": "'", "«": "\"", "»": "\"", "…": "...", "ç": "c" },
  fr: { "ç": "c" }, en: { "ç": "c" },
};

addWords({
  fr: {
    nav_broadcasts: "Alertes", broadcasts: "Alertes aux abonnés",
    broadcasts_intro: "Un SMS (ou WhatsApp) aux migrants abonnés aux alertes. Un autre superviseur approuve chaque envoi.",
    compose: "Écrire une alerte", text_in: "Texte en {l}", lang_fr: "français", lang_en: "anglais", lang_bm: "bambara",
    bm_spelling: "Compté comme envoyé : ɛ ɔ ɲ ŋ s'écrivent è ò ny ng.",
    countries: "Pays des destinataires (aucun coché : tous)", languages: "Langues des destinataires (aucune cochée : toutes)",
    country_ML: "Mali", country_NE: "Niger", country_DZ: "Algérie", country_LY: "Libye",
    country_MR: "Mauritanie", country_SN: "Sénégal", country_ZZ: "Autre pays",
    urgent_alert: "Urgent : envoyer tout de suite, même la nuit (heures calmes)",
    urgent_hint: "Seulement pour une urgence : les autres alertes attendent la fin des heures calmes, et 4 par mois au plus.",
    recipients_now: "Destinataires aujourd'hui : {n}", recipients_unknown: "Destinataires : —",
    text_unused: "Langue non visée : ce texte ne sera pas envoyé.",
    submit_broadcast: "Enregistrer pour approbation", broadcast_created: "Alerte n° {id} enregistrée : un autre superviseur doit l'approuver.",
    list_title: "Alertes envoyées et à approuver", none_yet: "Aucune alerte pour l'instant.",
    broadcast_heading: "Alerte n° {id}", written_by: "écrite par {name} le {at}",
    approved_by: "approuvée par {name} le {at}", cancelled_by: "annulée par {name} le {at}",
    send_at: "partira à {at}", to_whom: "{c} · {l}", everywhere: "tous pays", all_languages: "toutes langues",
    recipients: "{n} destinataire(s)", progress: "Avancement", progress_text: "{done} sur {n} traités",
    count_queued: "en attente", count_sent: "envoyés", count_delivered: "reçus", count_failed: "échecs", count_skipped: "sautés (STOP)",
    approve: "Approuver", approve_label: "Approuver l'alerte n° {id}", approve_done: "Alerte n° {id} approuvée.",
    cancel_broadcast: "Annuler l'envoi", cancel_label: "Annuler l'alerte n° {id}", cancel_confirm: "Confirmer l'annulation",
    cancel_done: "Alerte n° {id} annulée : rien de plus ne part.",
    own_broadcast: "Vous l'avez écrite : un autre superviseur doit l'approuver.",
    bstatus_awaiting_approval: "À approuver", bstatus_scheduled: "Programmée (heures calmes)",
    bstatus_sending: "En cours d'envoi", bstatus_done: "Terminée", bstatus_cancelled: "Annulée",
    urgent_badge: "Urgent", field_text_fr: "Texte en français", field_text_en: "Texte en anglais",
    field_text_bm: "Texte en bambara", field_countries: "Pays", field_languages: "Langues",
    more_broadcasts: "Plus d'alertes",
  },
  en: {
    nav_broadcasts: "Alerts", broadcasts: "Alerts to subscribers",
    broadcasts_intro: "An SMS (or WhatsApp) to the migrants who subscribed to alerts. Another supervisor approves each one.",
    compose: "Write an alert", text_in: "Text in {l}", lang_fr: "French", lang_en: "English", lang_bm: "Bambara",
    bm_spelling: "Counted as sent: ɛ ɔ ɲ ŋ are written è ò ny ng.",
    countries: "Recipients' countries (none ticked: all)", languages: "Recipients' languages (none ticked: all)",
    country_ML: "Mali", country_NE: "Niger", country_DZ: "Algeria", country_LY: "Libya",
    country_MR: "Mauritania", country_SN: "Senegal", country_ZZ: "Other country",
    urgent_alert: "Urgent: send at once, even at night (quiet hours)",
    urgent_hint: "For an emergency only: other alerts wait for the quiet hours to end, and go 4 a month at most.",
    recipients_now: "Recipients today: {n}", recipients_unknown: "Recipients: —",
    text_unused: "Language not targeted: this text will not be sent.",
    submit_broadcast: "Save for approval", broadcast_created: "Alert no. {id} saved: another supervisor must approve it.",
    list_title: "Alerts sent and to approve", none_yet: "No alert yet.",
    broadcast_heading: "Alert no. {id}", written_by: "written by {name} on {at}",
    approved_by: "approved by {name} on {at}", cancelled_by: "cancelled by {name} on {at}",
    send_at: "goes at {at}", to_whom: "{c} · {l}", everywhere: "every country", all_languages: "every language",
    recipients: "{n} recipient(s)", progress: "Progress", progress_text: "{done} of {n} done",
    count_queued: "waiting", count_sent: "sent", count_delivered: "delivered", count_failed: "failed", count_skipped: "skipped (STOP)",
    approve: "Approve", approve_label: "Approve alert no. {id}", approve_done: "Alert no. {id} approved.",
    cancel_broadcast: "Cancel sending", cancel_label: "Cancel alert no. {id}", cancel_confirm: "Confirm cancel",
    cancel_done: "Alert no. {id} cancelled: nothing more goes out.",
    own_broadcast: "You wrote it: another supervisor must approve it.",
    bstatus_awaiting_approval: "To approve", bstatus_scheduled: "Scheduled (quiet hours)",
    bstatus_sending: "Sending", bstatus_done: "Done", bstatus_cancelled: "Cancelled",
    urgent_badge: "Urgent", field_text_fr: "French text", field_text_en: "English text",
    field_text_bm: "Bambara text", field_countries: "Countries", field_languages: "Languages",
    more_broadcasts: "More alerts",
  },
});

function spelled(language, text) {
  const table = SPELLING[language] || {};
  return [...text].map((ch) => table[ch] ?? ch).join("");
}

// "{n} characters · {s} SMS ({enc})" as the API will count it; over 3 segments, refused.
function counterText(language, text) {
  const m = measure(spelled(language, text.trim()));
  return { text: t("counter", { n: m.chars, s: m.segments, enc: m.encoding }), over: m.segments > MAX_SEGMENTS };
}

let refreshTimer = null;

function checkboxes(name, values, text) {
  return values.map((value) => {
    const id = `b-${name}-${value}`;
    return el("label", { class: "inline check", for: id },
      el("input", { type: "checkbox", id, name, value }), ` ${text(value)}`);
  });
}

function composer(onCreated) {
  const counters = {};
  const areas = {};
  const fields = LANGUAGES.map((language) => {
    const id = `b-text-${language}`;
    const counter = el("p", { id: `${id}-count`, class: "hint counter" });
    const area = el("textarea", { id, name: `text_${language}`, rows: 3, maxlength: 1000,
                                  "aria-describedby": `${id}-count${language === "bm" ? ` ${id}-hint` : ""}` });
    counters[language] = counter;
    areas[language] = area;
    const paint = () => {
      const { text, over } = counterText(language, area.value);
      counter.textContent = over ? `${text} · ${t("too_long")}` : text;
      counter.className = over ? "hint counter error" : "hint counter";
    };
    area.addEventListener("input", paint);
    paint();
    return el("div", { class: "field" },
      el("label", { for: id, text: t("text_in", { l: t(`lang_${language}`) }) }), area,
      language === "bm" ? el("p", { id: `${id}-hint`, class: "hint", text: t("bm_spelling") }) : null, counter);
  });
  const countries = el("fieldset", { class: "choices" }, el("legend", { text: t("countries") }),
    ...checkboxes("countries", COUNTRIES, (c) => t(`country_${c}`)));
  const languages = el("fieldset", { class: "choices" }, el("legend", { text: t("languages") }),
    ...checkboxes("languages", LANGUAGES, (l) => t(`lang_${l}`)));
  const urgent = el("div", { class: "field" },
    el("label", { class: "inline check", for: "b-urgent" },
       el("input", { type: "checkbox", id: "b-urgent", name: "urgent", "aria-describedby": "b-urgent-hint" }),
       ` ${t("urgent_alert")}`),
    el("p", { id: "b-urgent-hint", class: "hint", text: t("urgent_hint") }));
  const audience = el("p", { id: "b-recipients", class: "recipients", role: "status", text: t("recipients_unknown") });
  const form = el("form", { id: "compose", class: "card", "aria-labelledby": "compose-title" },
    el("h2", { id: "compose-title", text: t("compose") }), ...fields, countries, languages, urgent, audience,
    el("button", { type: "submit", text: t("submit_broadcast") }),
    el("p", { class: "result", role: "status", "aria-live": "polite" }));

  const chosen = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
  let asked = 0;
  async function countRecipients() {
    const query = new URLSearchParams();
    for (const c of chosen("countries")) query.append("countries", c);
    for (const l of chosen("languages")) query.append("languages", l);
    const mine = ++asked;
    const result = await api("GET", `/broadcasts/audience?${query}`);
    if (mine !== asked || !result.ok) return;
    audience.textContent = t("recipients_now", { n: result.data.recipients });
  }
  function markUnused() {
    const targeted = chosen("languages");
    for (const language of LANGUAGES) {
      const unused = targeted.length > 0 && !targeted.includes(language);
      areas[language].closest(".field").classList.toggle("unused", unused);
      areas[language].title = unused ? t("text_unused") : "";
    }
  }
  for (const box of form.querySelectorAll("fieldset input")) {
    box.addEventListener("change", () => { markUnused(); countRecipients(); });
  }
  countRecipients();

  guarded(form, async () => {
    const targeted = chosen("languages");
    const text = {};
    for (const language of LANGUAGES) {
      const typed = areas[language].value.trim();
      if (typed && (!targeted.length || targeted.includes(language))) text[language] = typed;
    }
    const body = { text, countries: chosen("countries"), languages: targeted,
                   urgent: form.querySelector("#b-urgent").checked };
    const result = await api("POST", "/broadcasts", body);
    if (!result.ok) {
      const first = (result.data && Array.isArray(result.data.detail) && result.data.detail[0].loc) || [];
      if (first[1] === "text" && areas[first[2]]) areas[first[2]].focus();
      return { ok: false, message: broadcastProblem(result) };
    }
    for (const language of LANGUAGES) { areas[language].value = ""; areas[language].dispatchEvent(new Event("input")); }
    await onCreated();
    return { ok: true, message: t("broadcast_created", { id: result.data.id }) };
  });
  return form;
}

// A 422 names the field and the language (["body", "text", "bm"]): said in the operator's words.
function broadcastProblem(result) {
  const detail = result.data && result.data.detail;
  if (result.status === 422 && Array.isArray(detail)) {
    return detail.map((d) => {
      const [, field, which] = d.loc || [];
      const key = field === "text" ? `field_text_${which}` : `field_${field}`;
      return `${t(key)} : ${d.msg}`;
    }).join(" ; ");
  }
  return problem(result);
}

function progress(item) {
  const c = item.counts;
  const done = item.recipients - c.queued;
  const id = `b-progress-${item.id}`;
  return el("div", { class: "progress" },
    el("label", { for: id, text: t("progress") }),
    el("progress", { id, max: Math.max(item.recipients, 1), value: Math.max(done, 0) }),
    el("span", { text: ` ${t("progress_text", { done: Math.max(done, 0), n: item.recipients })}` }),
    el("ul", { class: "counts" },
      ...["queued", "sent", "delivered", "failed", "skipped"].map((name) =>
        el("li", { "data-count": name, text: `${t(`count_${name}`)} : ${c[name]}` }))));
}

function card(item, refresh) {
  const canAct = state.me.role !== "operator";
  const own = item.created_by === state.me.name;
  const heading = el("h3", { id: `b-${item.id}-title` }, t("broadcast_heading", { id: item.id }), " · ",
    el("span", { class: `bstatus bstatus-${item.status}`, text: label("bstatus", item.status) }),
    item.urgent ? el("span", { class: "badge-urgent", text: t("urgent_badge") }) : null);
  const who = [t("written_by", { name: item.created_by, at: when(item.created_at) })];
  if (item.approved_by) who.push(t("approved_by", { name: item.approved_by, at: when(item.approved_at) }));
  if (item.cancelled_by) who.push(t("cancelled_by", { name: item.cancelled_by, at: when(item.cancelled_at) }));
  if (item.status === "scheduled" && item.send_at) who.push(t("send_at", { at: when(item.send_at) }));
  const countries = item.countries.length ? item.countries.map((c) => t(`country_${c}`)).join(", ") : t("everywhere");
  const langs = item.languages.length ? item.languages.map((l) => t(`lang_${l}`)).join(", ") : t("all_languages");
  const texts = el("dl", { class: "texts" },
    ...LANGUAGES.filter((language) => item.text[language]).map((language) => [language, item.text[language]])
      .flatMap(([language, words]) => [
      el("dt", { text: `${t(`lang_${language}`)} (${item.segments[language] || "?"} SMS)` }),
      el("dd", { lang: language === "bm" ? "bm" : language, text: words })]));
  const result = el("p", { class: "result", role: "status", "aria-live": "polite" });
  const actions = el("div", { class: "row actions" });
  if (canAct && item.status === "awaiting_approval") {
    if (own) actions.append(el("p", { class: "hint", text: t("own_broadcast") }));
    else {
      actions.append(el("button", { type: "button", class: "approve", "aria-label": t("approve_label", { id: item.id }),
        text: t("approve"), onclick: async (event) => {
          event.target.disabled = true;
          const answer = await api("POST", `/broadcasts/${item.id}/approve`);
          if (!answer.ok) { event.target.disabled = false; showResult(result, false, problem(answer)); return; }
          await refresh(t("approve_done", { id: item.id }), item.id);
        } }));
    }
  }
  if (canAct && OPEN.has(item.status)) {
    let armed = false;
    const cancel = el("button", { type: "button", class: "danger cancel", "aria-label": t("cancel_label", { id: item.id }),
      text: t("cancel_broadcast"), onclick: async () => {
        if (!armed) { armed = true; cancel.dataset.armed = "1"; cancel.textContent = t("cancel_confirm"); return; }
        cancel.disabled = true;
        const answer = await api("POST", `/broadcasts/${item.id}/cancel`);
        if (!answer.ok) { cancel.disabled = false; showResult(result, false, problem(answer)); return; }
        await refresh(t("cancel_done", { id: item.id }), item.id);
      } });
    actions.append(cancel);
  }
  return el("li", { class: "card broadcast", "data-id": item.id, "aria-labelledby": `b-${item.id}-title` },
    heading, el("p", { class: "hint", text: who.join(" · ") }),
    el("p", { text: `${t("to_whom", { c: countries, l: langs })} · ${t("recipients", { n: item.recipients })}` }),
    texts, item.status === "awaiting_approval" ? null : progress(item), actions, result);
}

export async function renderBroadcasts() {
  clearInterval(refreshTimer);
  const list = el("ul", { id: "broadcasts", class: "broadcasts", "aria-labelledby": "list-title" });
  const status = el("p", { id: "broadcasts-status", class: "message", role: "status" });

  async function load(message = "", focusId = null) {
    const result = await api("GET", "/broadcasts?limit=20");
    if (!state.me || !location.hash.startsWith("#/broadcasts")) return;
    if (!result.ok) { status.textContent = problem(result); status.className = "message error"; return; }
    // A refresh keeps the operator's place: the same button of the same card, or its title.
    const active = document.activeElement;
    const focused = active && list.contains(active) ? active.closest("li[data-id]") : null;
    const role = active && active.matches("button") ? `button.${[...active.classList].join(".")}` : null;
    const keep = focusId || (focused && focused.dataset.id);
    list.replaceChildren(...result.data.items.map((item) => card(item, load)));
    status.className = "message";
    status.textContent = result.data.items.length ? "" : t("none_yet");
    const again = keep ? list.querySelector(`li[data-id="${keep}"]`) : null;
    if (again) {
      if (message) showResult(again.querySelector(".result"), true, message);
      if (focusId || focused) {
        let target = (role && again.querySelector(role)) || again.querySelector("h3");
        if (focusId) target = again.querySelector("h3");
        if (!target.matches("button")) target.tabIndex = -1;
        target.focus({ preventScroll: true });
      }
    }
  }

  const writer = state.me.role !== "operator";
  show(el("h1", { text: t("broadcasts") }), el("p", { class: "hint", text: t("broadcasts_intro") }),
       writer ? composer(() => load()) : null,
       el("h2", { id: "list-title", text: t("list_title") }), status, list);
  await load();
  refreshTimer = setInterval(() => {
    if (!state.me || !location.hash.startsWith("#/broadcasts")) { clearInterval(refreshTimer); return; }
    if (!document.querySelector("#broadcasts button[data-armed]")) load();
  }, REFRESH_SECONDS * 1000);
  document.documentElement.lang = lang;
}
