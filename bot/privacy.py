"""Pseudonyms of phone numbers and E.164 normalisation.

`normalise_phone` is the one place that decides who a sender is: every channel
(SMS, USSD, both voice gateways), the console's search and the on-call numbers
go through it. A number it refuses is no one: a voice caller hears that the
number is hidden, an SMS gets no answer, a USSD hop is refused.
"""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers

from bot.settings import Settings

# Used only when HELPLINE_PII_KEY is unset, which `HELPLINE_ENV=prod` refuses.
DEV_PII_KEY = b"helpline-dev-only-pii-key"
PSEUDONYM_HEX_CHARS = 20
WITHHELD_CALLER_IDS = frozenset({
    "+266696687",  # ANONYMOUS
    "+86282452253",  # UNAVAILABLE
    "+7378742833",  # RESTRICTED
    "+17378742833",  # RESTRICTED, with the 1 some carriers put in front
    "+2562533",  # BLOCKED
    "+8656696",  # UNKNOWN
})
"""What Twilio puts in `From` when the network gives no caller ID: each the keypad spelling
of a word (Twilio support, "Why am I getting calls from these strange numbers?";
docs/gateways.md). Every caller without an ID shares it, so it names no one: two of them
(+86 282 452 253, +1 737 874 2833) are well-formed numbers and would make strangers one
person."""


def pseudonym(phone: str, key: bytes) -> str:
    """A stable HMAC pseudonym of a phone number, safe for logs and key names."""
    return hmac.new(key, phone.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_CHARS]


def normalise_phone(raw: str, default_region: str) -> str | None:
    """E.164 form of `raw` (`whatsapp:` prefix dropped), or None if it is not a phone number
    or is a withheld caller ID's stand-in (`WITHHELD_CALLER_IDS`, however it is written)."""
    text = raw.strip().removeprefix("whatsapp:")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if e164 in WITHHELD_CALLER_IDS or not phonenumbers.is_possible_number(number):
        return None
    return e164


def pii_key(settings: Settings) -> bytes:
    """The HMAC key of phone pseudonyms: `HELPLINE_PII_KEY`, or the dev key when unset."""
    if settings.pii_key is None:
        return DEV_PII_KEY
    return settings.pii_key.get_secret_value().encode()
