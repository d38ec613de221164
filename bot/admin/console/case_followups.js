// A case's follow-up check-ins (docs/spec.md §11) on its page, and "check in now".
import { api, problem } from "./api.js";
import { addWords, t } from "./i18n.js";
import { el, guarded, when } from "./ui.js";

addWords({
  fr: {
    followups: "Suivi après le retour", followups_none: "Aucun suivi prévu.",
    followups_consent_no: "La personne n'a pas accepté d'être contactée après son retour.",
    followup_now: "Prendre des nouvelles maintenant", followup_channel: "Par",
    followup_queued: "Suivi demandé (n° {id}) : il part dans un instant.",
    followup_line: "n° {id} · {channel} · prévu le {due} · {status}",
    fu_status_scheduled: "prévu", fu_status_sent: "envoyé", fu_status_answered: "répondu",
    fu_status_expired: "sans réponse", fu_status_cancelled: "annulé",
    fu_channel_sms: "SMS", fu_channel_voice: "appel",
    fu_scores: "scores : économique {e}, social {s}, psychosocial {p}, global {c}",
    fu_alarm: "réponse d'alerte", fu_call: "demande un appel",
    fu_call_again: "deuxième essai (le premier n'a pas abouti)",
  },
  en: {
    followups: "Follow-up after return", followups_none: "No check-in planned.",
    followups_consent_no: "The migrant did not agree to be contacted after the return.",
    followup_now: "Check in now", followup_channel: "By",
    followup_queued: "Check-in asked (no. {id}): it goes out in a moment.",
    followup_line: "no. {id} · {channel} · due {due} · {status}",
    fu_status_scheduled: "scheduled", fu_status_sent: "sent", fu_status_answered: "answered",
    fu_status_expired: "no answer", fu_status_cancelled: "cancelled",
    fu_channel_sms: "SMS", fu_channel_voice: "call",
    fu_scores: "scores: economic {e}, social {s}, psychosocial {p}, overall {c}",
    fu_alarm: "alarm answer", fu_call: "asks for a call",
    fu_call_again: "second try (the first did not get through)",
  },
});

function score(value) { return value === null || value === undefined ? "—" : value.toFixed(2); }

function line(f) {
  const parts = [t("followup_line", { id: f.id, channel: t(`fu_channel_${f.channel}`), due: when(f.due_at),
                                      status: t(`fu_status_${f.status}`) })];
  if (f.scores) {
    parts.push(t("fu_scores", { e: score(f.scores.economic), s: score(f.scores.social),
                                p: score(f.scores.psychosocial), c: score(f.scores.composite) }));
  }
  const item = el("li", { class: f.alarm ? "priority-urgent" : null }, parts.join(" · "));
  if (f.alarm) item.append(` · ${t("fu_alarm")}`);
  if (f.call_asked) item.append(` · ${t("fu_call")}`);
  if (f.call_again) item.append(` · ${t("fu_call_again")}`);
  return item;
}

// The section, or null for a case that is no return request.
export function followupSection(c, reload) {
  if (c.kind !== "return_request") return null;
  const listed = c.followups || [];
  const content = listed.length
    ? el("ol", { id: "case-followups", class: "trail" }, ...listed.map(line))
    : el("p", { class: "hint", text: c.followup_consent === "no" ? t("followups_consent_no") : t("followups_none") });
  let form = null;
  if (c.followup_consent === "yes" && !c.erased_at) {
    const channel = el("select", { id: "followup-channel", name: "channel" },
      ...["sms", "voice"].map((value) => el("option", { value, text: t(`fu_channel_${value}`) })));
    if (c.channel === "voice") channel.value = "voice";
    form = el("form", { id: "followup-form", "aria-labelledby": "h-followup-now" },
      el("h3", { id: "h-followup-now", text: t("followup_now") }),
      el("label", { for: "followup-channel", text: t("followup_channel") }),
      el("div", { class: "row" }, channel, el("button", { type: "submit", text: t("followup_now") })),
      el("p", { class: "result", role: "status", "aria-live": "polite" }));
    guarded(form, async (data) => {
      const result = await api("POST", `/cases/${c.reference}/followups`, { channel: data.get("channel") });
      if (!result.ok) return { ok: false, message: problem(result) };
      await reload("followup-form", t("followup_queued", { id: result.data.id }));
      return null;
    });
  }
  return el("section", { class: "card wide", "aria-labelledby": "h-followups" },
    el("h2", { id: "h-followups", text: t("followups") }), content, form);
}
