// Calls to the admin API with the tab's token, and refusals in plain words.
import { label, t } from "./i18n.js";

export const API = "/admin/api/v1";
const TOKEN_KEY = "helpline.token";

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function keepToken(value) { sessionStorage.setItem(TOKEN_KEY, value); }
export function dropToken() { sessionStorage.removeItem(TOKEN_KEY); }

let onExpired = () => {};
export function whenExpired(handler) { onExpired = handler; }

// { ok, status, data, retryAfter }; never throws. A 401 while signed in ends the session.
export async function api(method, path, body, { bearer = token() } = {}) {
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers: { Authorization: `Bearer ${bearer}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      cache: "no-store",
    });
  } catch {
    return { ok: false, status: 0, data: null };
  }
  const type = response.headers.get("content-type") || "";
  let data = null;
  if (response.status !== 204) {
    data = type.includes("json") ? await response.json().catch(() => null) : await response.blob();
  }
  const result = { ok: response.ok, status: response.status, data,
                   retryAfter: Number(response.headers.get("retry-after")) || 0 };
  if (response.status === 401 && bearer && bearer === token()) onExpired();
  return result;
}

const KNOWN = [
  [/SMS to this phone is not safe/i, "refused_sms_not_safe"],
  [/opted out/i, "refused_opted_out"],
  [/phone was erased/i, "refused_erased"],
  [/already at level (\d)/i, "refused_level"],
  [/needs the (\w+) role/i, "refused_role"],
  [/last admin/i, "refused_last_admin"],
  [/active operator has that name|already exists/i, "refused_operator_exists"],
  [/referral of this case is (\w+) already/i, "refused_referral_open"],
  [/Primero is not configured/i, "refused_referral_config"],
  [/case was erased: nothing is left to refer/i, "refused_referral_erased"],
];

// What went wrong, in the console's language, naming the field when the API does.
export function problem(result) {
  const { status, data } = result;
  if (status === 0) return t("network");
  if (status === 503) return t("store_down");
  if (status === 429) return t("throttled", { s: result.retryAfter || 60 });
  if (status === 404) return t("refused_not_found");
  const detail = data && data.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      const field = (d.loc || []).slice(1).join(".");
      return field ? `${t(`field_${field}`)} : ${d.msg}` : d.msg;
    }).join(" ; ");
  }
  if (data && data.allowed) return t("refused_status", { allowed: data.allowed.map((s) => t(`status_${s}`)).join(", ") || "—" });
  if (typeof detail === "string") {
    for (const [pattern, key] of KNOWN) {
      const match = detail.match(pattern);
      if (match) return t(key, { n: match[1], role: match[1], status: label("referral_status", match[1]) });
    }
    return detail;
  }
  return t("failed", { status });
}
