// Programme report (supervisors): the monthly figures of GET /reports/programme, charted.
// A figure the API suppressed (null: a count from 1 to 4, a mean of fewer than 5 answers)
// shows as "< 5" with no bar: never as 0, never as its value.
import { api, problem } from "./api.js";
import { addWords, lang, t } from "./i18n.js";
import { el, guarded, show, state } from "./ui.js";

addWords({
  fr: {
    nav_reports: "Rapport", reports: "Rapport du programme",
    report_hint: "Chiffres par mois, sans donnée personnelle. Un nombre de 1 à 4, ou une moyenne de moins de 5 réponses, est caché (« < 5 ») : personne ne peut être reconnu.",
    report_from: "De (mois)", report_to: "À (mois)", report_show: "Afficher",
    report_shown: "Rapport de {from} à {to}.", report_csv: "Télécharger le CSV",
    report_csv_done: "CSV téléchargé.", report_total: "Total",
    report_hidden: "< 5", report_hidden_long: "moins de 5 (caché)",
    report_requests: "Demandes de retour", report_returned: "Retours", report_callbacks: "Rappels",
    report_emergencies: "Urgences", report_median: "Jours médians jusqu'au retour",
    report_sent: "Suivis envoyés", report_answered: "Suivis répondus",
    report_requests_month: "Demandes de retour par mois", report_outcome: "Issue des demandes (total)",
    report_vulnerability: "Vulnérabilités (total)", report_nationality: "Nationalité (total)",
    report_country: "Pays actuel (total)", report_answered_month: "Suivis répondus par mois",
    report_scores: "Score moyen des suivis (0 en difficulté, 1 bien)", report_month: "Mois",
    report_table: "Chiffres par mois", report_composite: "Score global",
    outcome_open: "en cours", outcome_withdrawn: "annulées", outcome_returned: "rentrés",
    outcome_closed: "clôturées",
    vuln_under_18: "moins de 18 ans", vuln_medical: "soins médicaux", vuln_pregnant: "enceinte",
    vuln_trafficking_or_violence: "traite ou violences", vuln_disability: "handicap",
    dim_economic: "économique", dim_social: "social", dim_psychosocial: "psychosocial",
    dim_composite: "global", group_other: "autres", group_unknown: "inconnu",
  },
  en: {
    nav_reports: "Report", reports: "Programme report",
    report_hint: "Figures per month, with no personal data. A count from 1 to 4, or a mean of fewer than 5 answers, is hidden (\"< 5\"): nobody can be singled out.",
    report_from: "From (month)", report_to: "To (month)", report_show: "Show",
    report_shown: "Report from {from} to {to}.", report_csv: "Download the CSV",
    report_csv_done: "CSV downloaded.", report_total: "Total",
    report_hidden: "< 5", report_hidden_long: "fewer than 5 (hidden)",
    report_requests: "Return requests", report_returned: "Returns", report_callbacks: "Call-backs",
    report_emergencies: "Emergencies", report_median: "Median days to return",
    report_sent: "Check-ins sent", report_answered: "Check-ins answered",
    report_requests_month: "Return requests per month", report_outcome: "Outcome of requests (total)",
    report_vulnerability: "Vulnerabilities (total)", report_nationality: "Nationality (total)",
    report_country: "Current country (total)", report_answered_month: "Check-ins answered per month",
    report_scores: "Mean check-in score (0 struggling, 1 doing well)", report_month: "Month",
    report_table: "Figures per month", report_composite: "Overall score",
    outcome_open: "open", outcome_withdrawn: "withdrawn", outcome_returned: "returned",
    outcome_closed: "closed",
    vuln_under_18: "under 18", vuln_medical: "medical need", vuln_pregnant: "pregnant",
    vuln_trafficking_or_violence: "trafficking or violence", vuln_disability: "disability",
    dim_economic: "economic", dim_social: "social", dim_psychosocial: "psychosocial",
    dim_composite: "overall", group_other: "others", group_unknown: "unknown",
  },
});

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function shown(value) { return value === null || value === undefined ? t("report_hidden") : String(value); }

function monthName(month) {
  if (month === "total") return t("report_total");
  return new Date(`${month}-15T12:00:00Z`).toLocaleDateString(lang === "fr" ? "fr-FR" : "en-GB",
                                                              { month: "short", year: "numeric" });
}

function groupName(prefix, key) {
  const known = t(`${prefix}_${key}`);
  return known === `${prefix}_${key}` ? key : known;
}

// Horizontal bars, one a row; `scale` is the longest bar's value (counts: the largest).
// A suppressed value draws no bar and reads "< 5" (the table below says it in words).
function bars(caption, rows, { scale = null, id = null } = {}) {
  const figure = el("figure", { class: "chart", id });
  const values = rows.map(([, value]) => value ?? 0);
  const max = scale ?? Math.max(1, ...values);
  const rowHeight = 26;
  const chart = svg("svg", { viewBox: `0 0 340 ${rows.length * rowHeight + 4}`, role: "img",
                             width: "100%", "aria-label": caption, preserveAspectRatio: "xMinYMin meet" });
  chart.append(svg("title", {}, caption));
  rows.forEach(([name, value], index) => {
    const y = index * rowHeight + 2;
    chart.append(svg("text", { x: 0, y: y + 16, class: "chart-label" }, name));
    const width = value === null ? 0 : Math.round((value / max) * 120);
    if (value !== null) {
      chart.append(svg("rect", { x: 175, y: y + 3, width: Math.max(width, value ? 2 : 0), height: 18, class: "bar" }));
    }
    chart.append(svg("text", { x: 181 + width, y: y + 16,
                               class: value === null ? "chart-value suppressed" : "chart-value" }, shown(value)));
  });
  const words = el("table", {}, el("caption", { text: caption }),
    el("tbody", {}, ...rows.map(([name, value]) => el("tr", {},
      el("th", { scope: "row", text: name }),
      el("td", { text: value === null ? t("report_hidden_long") : String(value) })))));
  figure.append(el("figcaption", { text: caption }), chart, el("div", { class: "sr-only" }, words));
  return figure;
}

function figure(label, value, id) {
  return el("div", { id }, el("dt", { text: label }),
            el("dd", { text: shown(value), title: value === null ? t("report_hidden_long") : null }));
}

function thisMonth(back = 0) {
  const now = new Date();
  const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 15));
  return day.toISOString().slice(0, 7);
}

function monthTable(report) {
  const columns = [
    ["report_requests", (m) => m.return_requests.created],
    ["outcome_returned", (m) => m.return_requests.by_outcome.returned],
    ["outcome_withdrawn", (m) => m.return_requests.by_outcome.withdrawn],
    ["report_callbacks", (m) => m.callbacks],
    ["report_emergencies", (m) => m.emergencies],
    ["report_median", (m) => m.median_days_to_return],
    ["report_sent", (m) => m.checkins.sent],
    ["report_answered", (m) => m.checkins.answered],
    ["report_composite", (m) => m.checkins.mean_scores.composite],
  ];
  const head = el("tr", {}, el("th", { scope: "col", text: t("report_month") }),
                  ...columns.map(([key]) => el("th", { scope: "col", text: t(key) })));
  const rows = [...report.months, report.total].map((month) => el("tr", {},
    el("th", { scope: "row", text: monthName(month.month) }),
    ...columns.map(([, pick]) => {
      const value = pick(month);
      return el("td", { class: value === null ? "suppressed" : null, text: shown(value),
                        title: value === null ? t("report_hidden_long") : null });
    })));
  return el("div", { class: "table-wrap" }, el("table", { id: "report-table" },
    el("caption", { text: t("report_table") }), el("thead", {}, head), el("tbody", {}, ...rows)));
}

function drawn(report) {
  const total = report.total;
  const requests = total.return_requests;
  const figures = el("dl", { class: "figures", id: "report-figures" },
    figure(t("report_requests"), requests.created, "fig-requests"),
    figure(t("report_returned"), requests.by_outcome.returned, "fig-returned"),
    figure(t("report_callbacks"), total.callbacks, "fig-callbacks"),
    figure(t("report_emergencies"), total.emergencies, "fig-emergencies"),
    figure(t("report_median"), total.median_days_to_return, "fig-median"),
    figure(t("report_sent"), total.checkins.sent, "fig-sent"),
    figure(t("report_answered"), total.checkins.answered, "fig-answered"));
  const group = (prefix, counts) => Object.entries(counts).map(([key, n]) => [groupName(prefix, key), n]);
  const charts = el("div", { class: "charts" },
    bars(t("report_requests_month"), report.months.map((m) => [monthName(m.month), m.return_requests.created]),
         { id: "chart-requests" }),
    bars(t("report_outcome"), group("outcome", requests.by_outcome), { id: "chart-outcome" }),
    bars(t("report_vulnerability"), group("vuln", requests.by_vulnerability), { id: "chart-vulnerability" }),
    bars(t("report_nationality"), group("group", requests.by_nationality), { id: "chart-nationality" }),
    bars(t("report_country"), group("group", requests.by_current_country), { id: "chart-country" }),
    bars(t("report_answered_month"), report.months.map((m) => [monthName(m.month), m.checkins.answered]),
         { id: "chart-answered" }),
    bars(t("report_scores"), group("dim", total.checkins.mean_scores), { scale: 1, id: "chart-scores" }));
  return [figures, charts, monthTable(report)];
}

export async function renderReports() {
  if (state.me.role === "operator") {
    show(el("h1", { text: t("reports") }),
         el("p", { class: "message error", role: "alert", text: t("refused_role", { role: t("role_supervisor") }) }));
    return;
  }
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const from = params.get("from") || thisMonth(11);
  const to = params.get("to") || thisMonth();
  const form = el("form", { id: "report-form", class: "card", "aria-labelledby": "report-form-title" },
    el("h2", { id: "report-form-title", class: "sr-only", text: t("reports") }),
    el("div", { class: "row" },
      el("div", {}, el("label", { for: "report-from", text: t("report_from") }),
         el("input", { id: "report-from", name: "from", type: "month", value: from, required: true })),
      el("div", {}, el("label", { for: "report-to", text: t("report_to") }),
         el("input", { id: "report-to", name: "to", type: "month", value: to, required: true })),
      el("button", { type: "submit", text: t("report_show") }),
      el("button", { type: "button", id: "report-csv", class: "secondary", text: t("report_csv") })),
    el("p", { class: "result", role: "status", "aria-live": "polite" }));
  const area = el("div", { id: "report-area" });
  guarded(form, async (data) => {
    location.hash = `#/reports?from=${data.get("from")}&to=${data.get("to")}`;
    return null;
  });
  form.querySelector("#report-csv").addEventListener("click", async () => {
    const result = await api("GET", `/reports/programme.csv?from=${from}&to=${to}`);
    const status = form.querySelector(".result");
    status.className = result.ok ? "result ok" : "result error";
    status.textContent = result.ok ? t("report_csv_done") : problem(result);
    if (!result.ok) return;
    const link = el("a", { href: URL.createObjectURL(result.data), download: `programme-${from}-${to}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
  });
  show(el("h1", { text: t("reports") }), el("p", { class: "hint", text: t("report_hint") }), form, area);
  const result = await api("GET", `/reports/programme?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
  if (!state.me) return;
  const status = form.querySelector(".result");
  if (!result.ok) {
    status.className = "result error";
    status.setAttribute("role", "alert");
    status.textContent = problem(result);
    return;
  }
  status.className = "result ok";
  status.textContent = t("report_shown", { from: monthName(result.data.from), to: monthName(result.data.to) });
  area.replaceChildren(...drawn(result.data));
}
