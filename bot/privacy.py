"""Pseudonyms of phone numbers and E.164 normalisation."""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers

from bot.settings import Settings

# Used only when HELPLINE_PII_KEY is unset, which `HELPLINE_ENV=prod` refuses.
DEV_PII_KEY = b"helpline-dev-only-pii-key"
PSEUDONYM_HEX_CHARS = 20


def pseudonym(phone: str, key: bytes) -> str:
    """A stable HMAC pseudonym of a phone number, safe for logs and key names."""
    return hmac.new(key, phone.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_CHARS]


def normalise_phone(raw: str, default_region: str) -> str | None:
    """E.164 form of `raw` (`whatsapp:` prefix dropped), or None if it is not a phone number."""
    text = raw.strip().removeprefix("whatsapp:")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def pii_key(settings: Settings) -> bytes:
    """The HMAC key of phone pseudonyms: `HELPLINE_PII_KEY`, or the dev key when unset."""
    if settings.pii_key is None:
        return DEV_PII_KEY
    return settings.pii_key.get_secret_value().encode()
