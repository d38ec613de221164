// SMS length as the helpline counts it (bot/engine/sms.py, 3GPP TS 23.038):
// GSM-7 (extension characters count two) 160 alone / 153 a part; else UCS-2 70 / 67.

const BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const EXTENDED = "^{}\\[~]|€\f";
export const MAX_SEGMENTS = 3;

export function measure(text) {
  let septets = 0;
  let gsm = true;
  for (const char of text) {
    if (BASIC.includes(char)) septets += 1;
    else if (EXTENDED.includes(char)) septets += 2;
    else { gsm = false; break; }
  }
  if (gsm) {
    const segments = septets <= 160 ? 1 : Math.ceil(septets / 153);
    return { chars: text.length, segments, encoding: "GSM-7" };
  }
  const units = text.length;  // UTF-16 code units, as UCS-2 counts them
  const segments = units <= 70 ? 1 : Math.ceil(units / 67);
  return { chars: units, segments, encoding: "UCS-2" };
}
