// The case page's referral to Primero: the consent choice, and how each referral went.
import { api, problem } from "./api.js";
import { label, t } from "./i18n.js";
import { el, guarded, state, when } from "./ui.js";

const OPEN = ["pending", "sent"];
const CONSENTS = ["given_by_migrant", "recorded_by_operator"];

function form(...controls) {
  return el("form", { id: "referral-form", class: "action", "aria-labelledby": "referral-form-title" },
    el("h3", { id: "referral-form-title", text: t("referral") }), ...controls,
    el("p", { class: "result", role: "status", "aria-live": "polite" }));
}

function actorName(actor) {
  return actor.startsWith("operator:") ? actor.slice("operator:".length) : label("actor", actor);
}

// The action: offered only when it can succeed; otherwise saying why not.
export function referralForm(c, reload) {
  const open = (c.referrals || []).find((r) => OPEN.includes(r.status));
  if (!state.me.primero) return form(el("p", { class: "hint", text: t("referral_not_configured") }));
  if (c.erased_at) return form(el("p", { class: "hint", text: t("referral_erased") }));
  if (open) return form(el("p", { class: "hint", text: t("referral_open", { status: label("referral_status", open.status) }) }));
  // No consent is preselected: the operator says which one was given.
  const choices = el("fieldset", { class: "choices" },
    el("legend", { text: t("referral_consent") }),
    ...CONSENTS.map((consent) => el("label", { class: "choice" },
      el("input", { type: "radio", name: "consent", value: consent, required: true, id: `consent-${consent}` }),
      ` ${label("consent", consent)}`)));
  const note = el("textarea", { id: "referral-note", name: "note", rows: 2, maxlength: 4000 });
  const built = form(el("p", { class: "hint", id: "referral-what", text: t("referral_what") }), choices,
    el("label", { for: "referral-note", text: t("referral_note") }), note,
    el("button", { type: "submit", id: "referral-button", text: t("referral_button") }));
  guarded(built, async (data) => {
    const body = { system: "primero", consent: data.get("consent") };
    if (data.get("note")) body.note = data.get("note");
    const result = await api("POST", `/cases/${c.reference}/referrals`, body);
    if (!result.ok) return { ok: false, message: problem(result) };
    await reload("referral-form", t("referral_done"));
    return null;
  });
  return built;
}

// Every referral of the case, newest last: status, Primero's number, the error in its words.
export function referralList(c) {
  const referrals = c.referrals || [];
  if (!referrals.length) return el("p", { class: "hint", id: "case-referrals", text: t("referrals_empty") });
  return el("ol", { id: "case-referrals", class: "trail" }, ...referrals.map((r) => el("li", { class: `referral referral-${r.status}` },
    el("strong", { text: `${label("system", r.system)} · ${label("referral_status", r.status)}` }),
    r.external_id ? ` · ${t("referral_number", { id: r.external_id })}` : "",
    el("br"),
    t("referral_by", { name: actorName(r.requested_by), at: when(r.created_at), consent: label("consent", r.consent) }),
    r.status !== "pending" || r.attempts ? ` · ${t("referral_updated", { at: when(r.updated_at), n: r.attempts })}` : "",
    r.error ? el("span", { class: "referral-error" }, el("br"), t("referral_error", { e: r.error })) : "",
    r.note ? el("span", {}, el("br"), t("referral_note_line", { note: r.note })) : "")));
}
