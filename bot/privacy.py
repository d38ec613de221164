"""Pseudonyms of phone numbers and E.164 normalisation.

`normalise_phone` is the one place that decides who a sender is: every channel
(SMS, USSD, both voice gateways), the console's search and the on-call numbers
go through it. A number it refuses is no one: a voice caller hears that the
number is hidden, an SMS gets no answer, a USSD hop is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NamedTuple

import phonenumbers

from bot.bounded import Bounded
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
KNOWN_SENDERS = 65_536
"""Pseudonyms of sender fields known to be in E.164 form already (`Senders`), by tag."""


def pseudonym(phone: str, key: bytes) -> str:
    """A stable HMAC pseudonym of a phone number, safe for logs and key names."""
    return hmac.digest(key, phone.encode(), "sha256").hex()[:PSEUDONYM_HEX_CHARS]


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


class Sender(NamedTuple):
    phone: str
    """E.164."""
    pseudonym: str
    """`pseudonym(phone, key)`: the conversation's name for the phone (one HMAC a hop)."""


class Senders:
    """E.164 of sender fields, with the phone's pseudonym.

    Every hop of a USSD session repeats its sender field: parsing it costs ~30 µs
    (phonenumbers) and its HMAC pseudonym ~26k instructions (OpenSSL), of a ~720k
    hop. A field already in E.164 form is remembered (bounded) by a keyed BLAKE2b
    tag of it (~2k instructions), with its pseudonym: never a phone number. Any
    other field is parsed every time.
    """

    def __init__(self, key: bytes, default_region: str) -> None:
        self.key = key
        self.default_region = default_region
        self._tagger = hashlib.blake2b(hmac.digest(key, b"helpline sender tags", "sha256"),
                                       digest_size=16)
        """A tag is BLAKE2b of a secret prefix (derived from `key`) and the field: one
        compression for a field under 96 bytes (BLAKE2 has no length extension), where
        its keyed mode hashes a key block first."""
        self.canonical: Bounded[bytes, str] = Bounded(KNOWN_SENDERS)
        """Pseudonyms of E.164 fields, by the fields' tags."""

    def sender(self, raw: str) -> Sender | None:
        """The phone of a sender field and its pseudonym; None when it is no phone number."""
        text = raw.strip()
        tagger = self._tagger.copy()
        tagger.update(text.encode())
        tag = tagger.digest()
        known = self.canonical.get(tag)
        if known is not None:
            return Sender(text, known)
        phone = normalise_phone(raw, self.default_region)
        if phone is None:
            return None
        name = pseudonym(phone, self.key)
        if phone == text:
            self.canonical.put(tag, name)
        return Sender(phone, name)

    def phone(self, raw: str) -> str | None:
        """E.164 of a sender field, None when it is no phone number."""
        sender = self.sender(raw)
        return None if sender is None else sender.phone


def pii_key(settings: Settings) -> bytes:
    """The HMAC key of phone pseudonyms: `HELPLINE_PII_KEY`, or the dev key when unset."""
    if settings.pii_key is None:
        return DEV_PII_KEY
    return settings.pii_key.get_secret_value().encode()
