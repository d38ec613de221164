// Dashboard (charts from /stats, CSV export) and operators' management (admins).
import { api, problem } from "./api.js";
import { barChart, dayChart } from "./charts.js";
import { label, lang, t } from "./i18n.js";
import { clock, el, guarded, show, showResult, state, when } from "./ui.js";

const CLOSED = new Set(["closed", "withdrawn", "returned"]);

function dayName(day) {
  return new Date(`${day}T12:00:00Z`).toLocaleDateString(lang === "fr" ? "fr-FR" : "en-GB", { day: "numeric", month: "short" });
}

export async function renderDashboard() {
  const [stats, trends] = await Promise.all([api("GET", "/stats"), api("GET", "/stats/trends?days=14")]);
  if (!state.me) return;
  if (!stats.ok) {
    show(el("h1", { text: t("dashboard") }), el("p", { class: "message error", role: "alert", text: problem(stats) }));
    return;
  }
  const s = stats.data;
  const open = Object.entries(s.by_status).filter(([status]) => !CLOSED.has(status))
    .reduce((sum, [, n]) => sum + n, 0);
  const figures = el("dl", { class: "figures" },
    el("div", {}, el("dt", { text: t("total") }), el("dd", { text: s.total })),
    el("div", {}, el("dt", { text: t("open") }), el("dd", { text: open })),
    el("div", {}, el("dt", { text: t("escalated_count") }), el("dd", { text: s.escalated })),
    trends.ok ? el("div", {}, el("dt", { text: t("median_first_contact") }),
      el("dd", { text: trends.data.median_first_contact_minutes === null ? "—"
                 : clock(trends.data.median_first_contact_minutes * 60000) })) : null);
  const charts = el("div", { class: "charts" },
    dayChart(t("per_day"), trends.ok ? trends.data.by_day_kind : {}, 14, dayName,
             Object.keys(s.by_kind), (kind) => label("kind", kind)),
    barChart(t("by_priority"), Object.entries(s.by_priority).map(([p, n]) => [label("priority", p), n, p]),
             { colours: { urgent: "bar-urgent", high: "bar-high" } }),
    barChart(t("by_status"), Object.entries(s.by_status).map(([st, n]) => [label("status", st), n, st])),
    barChart(t("by_kind"), Object.entries(s.by_kind).map(([k, n]) => [label("kind", k), n, k])));
  let exportForm = null;
  if (state.me.role !== "operator") {
    exportForm = el("form", { id: "export-form", class: "card", "aria-labelledby": "export-title" },
      el("h2", { id: "export-title", text: t("export") }), el("p", { class: "hint", text: t("export_hint") }),
      el("button", { type: "submit", text: t("export") }),
      el("p", { class: "result", role: "status", "aria-live": "polite" }));
    guarded(exportForm, async () => {
      const result = await api("GET", "/cases/export.csv");
      if (!result.ok) return { ok: false, message: problem(result) };
      const link = el("a", { href: URL.createObjectURL(result.data), download: "cases.csv" });
      document.body.append(link);
      link.click();
      link.remove();
      return { ok: true, message: t("export_done", { n: result.data.size }) };
    });
  }
  show(el("h1", { text: t("dashboard") }), figures, charts, exportForm);
}

export async function renderOperators() {
  if (state.me.role !== "admin") {
    show(el("h1", { text: t("operators") }), el("p", { class: "message error", role: "alert", text: t("refused_role", { role: label("role", "admin") }) }));
    return;
  }
  const listed = await api("GET", "/operators");
  if (!state.me) return;
  const rows = listed.ok ? listed.data : [];
  const table = el("table", { id: "operators" },
    el("caption", { class: "sr-only", text: t("operators") }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("operator_name").split(" (")[0] }),
                         el("th", { scope: "col", text: t("role") }), el("th", { scope: "col", text: t("status") }),
                         el("th", { scope: "col", text: t("actions") }))));
  const body = el("tbody");
  for (const operator of rows) {
    const cell = el("td");
    if (!operator.revoked_at) {
      const form = el("form", { class: "revoke", "aria-label": `${t("revoke")} ${operator.name}` },
        el("button", { type: "submit", class: "danger", text: t("revoke") }),
        el("p", { class: "result", role: "status", "aria-live": "polite" }));
      let armed = false;
      guarded(form, async () => {
        if (!armed) { armed = true; form.querySelector("button").textContent = t("revoke_confirm", { name: operator.name }); return { ok: true, message: "" }; }
        const result = await api("DELETE", `/operators/${encodeURIComponent(operator.name)}`);
        if (!result.ok) { armed = false; form.querySelector("button").textContent = t("revoke"); return { ok: false, message: problem(result) }; }
        await renderOperators();
        const status = document.getElementById("operators-status");
        showResult(status, true, t("revoked", { name: operator.name }));
        return null;
      });
      cell.append(form);
    }
    body.append(el("tr", {}, el("td", { text: operator.name }), el("td", { text: label("role", operator.role) }),
      el("td", { text: operator.revoked_at ? t("revoked_on", { at: when(operator.revoked_at) }) : t("active") }), cell));
  }
  table.append(body);
  const name = el("input", { id: "new-name", name: "name", required: true, pattern: "[a-z0-9][a-z0-9_.\\-]{0,31}", autocomplete: "off" });
  const role = el("select", { id: "new-role", name: "role" },
    ...["operator", "supervisor", "admin"].map((r) => el("option", { value: r, text: label("role", r) })));
  const add = el("form", { id: "add-operator", class: "card", "aria-labelledby": "add-title" },
    el("h2", { id: "add-title", text: t("add_operator") }),
    el("label", { for: "new-name", text: t("operator_name") }), name,
    el("label", { for: "new-role", text: t("role") }), el("div", { class: "row" }, role, el("button", { type: "submit", text: t("add_operator") })),
    el("p", { class: "result", role: "status", "aria-live": "polite" }), el("div", { id: "new-token" }));
  guarded(add, async (data) => {
    const result = await api("POST", "/operators", { name: data.get("name"), role: data.get("role") });
    if (!result.ok) return { ok: false, message: problem(result) };
    await renderOperators();
    const again = document.getElementById("add-operator");
    const output = el("input", { id: "token-once", readonly: true, value: result.data.token, "aria-labelledby": "token-label" });
    again.querySelector("#new-token").append(el("p", { id: "token-label", text: t("operator_added", { name: result.data.name }) }), output);
    output.focus();
    output.select();
    return null;
  });
  show(el("h1", { text: t("operators") }), el("p", { id: "operators-status", class: "result", role: "status" }),
       el("div", { class: "table-wrap" }, table), add);
}
