"""A subscription to alerts, as kept for the worker to send to (docs/spec.md §10).

Pure value type and its compact record (Redis memory: one short string per
subscriber, `bot.store.subscriptions`). The record holds what sending needs and
what proves consent: the country the migrant chose, the language and channel to
send in, when they subscribed and which version of the flow's consent text they
accepted, and the number itself (the pseudonym, its key, cannot be reversed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.engine.session import SubscribeAlerts, UnsubscribeAlerts


class Country(StrEnum):
    """The short list of docs/spec.md §10 as ISO 3166 codes; `ZZ` (ISO's code for
    "unknown") is "other"."""

    MALI = "ML"
    NIGER = "NE"
    ALGERIA = "DZ"
    LIBYA = "LY"
    MAURITANIA = "MR"
    SENEGAL = "SN"
    OTHER = "ZZ"


COUNTRIES = tuple(str(country) for country in Country)


class AlertChannel(StrEnum):
    SMS = "s"
    WHATSAPP = "w"
    """Subscribed from WhatsApp: alerts go there (a template outside the 24 h window)."""


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(number: int) -> str:
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = _DIGITS[digit] + text
        if number == 0:
            return text


@dataclass(frozen=True)
class Subscription:
    country: str
    language: str
    channel: AlertChannel
    since: int
    """Epoch second of the consent."""
    text_version: str
    """The flow's version when the consent screen was shown (`version:` of the flow)."""
    phone: str
    """E.164."""

    def to_record(self) -> str:
        """`NE fr s <since, base 36> <text version> <phone>`: space-separated (no field
        holds a space; `bot/store/lua/fix_audience.lua` reads the same layout)."""
        version = self.text_version.replace(" ", "_") or "-"
        return " ".join((self.country, self.language, self.channel, _b36(self.since),
                         version, self.phone))

    @classmethod
    def from_record(cls, record: str) -> Subscription:
        country, language, channel, since, version, phone = record.split(" ")
        return cls(country=country, language=language, channel=AlertChannel(channel),
                   since=int(since, 36), text_version="" if version == "-" else version,
                   phone=phone)


def alerts_change(effects: Sequence[object], *, erase: bool, phone: str, whatsapp: bool,
                  now: datetime) -> tuple[Subscription | None, bool]:
    """A turn's change to the phone's alert subscription: (subscribe to, end it); rare,
    and no cost otherwise. An erasure ends it."""
    subscribe: Subscription | None = None
    unsubscribe = erase
    for effect in effects:
        if isinstance(effect, UnsubscribeAlerts):
            unsubscribe = True
        elif isinstance(effect, SubscribeAlerts):
            channel = AlertChannel.WHATSAPP if whatsapp else AlertChannel.SMS
            subscribe = Subscription(
                country=effect.country, language=effect.language, channel=channel,
                since=int(now.timestamp()), text_version=effect.text_version, phone=phone)
    return subscribe, unsubscribe
