"""Broadcasts: what a supervisor may send, who approves it, how it is counted (docs/spec.md §10).

Pure rules: the API, the store and the worker ask them; no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from bot.engine import sms
from bot.engine.spelling import spelled
from bot.flows.model import Flow
from bot.outreach.subscriptions import COUNTRIES
from bot.types import Channel

SEND_BROADCAST = "send_broadcast"
"""The worker's job `send_broadcast(id, shard)`: one case shard's share of an audience."""
SEND_ALERT_FALLBACK = "send_alert_fallback"
"""The worker's job `send_alert_fallback(id, shard, pseudonym)`: an SMS instead of a
WhatsApp alert Twilio refused (63016)."""
BROADCAST_PARAMETER = "bc"
"""The status callback's query parameter naming a recipient: `<id>.<shard>.<pseudonym>`."""
SHARDS = 16
"""The case shards an audience is split over (`bot.store.keys.CASE_SHARDS`)."""
MAX_SEGMENTS = 3
MAX_TEXT_CHARS = 1000
"""Far above 3 segments: a longer text is refused as such, not read whole."""


class BroadcastStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    SCHEDULED = "scheduled"
    """Approved in quiet hours: waits until they end (a non-urgent broadcast)."""
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


OPEN = frozenset({BroadcastStatus.AWAITING_APPROVAL, BroadcastStatus.SCHEDULED,
                  BroadcastStatus.SENDING})
"""Statuses a broadcast may still be cancelled from."""


class Outcome(StrEnum):
    """Where each recipient is; the counts partition the recipients."""

    QUEUED = "queued"
    """Not yet handed to Twilio."""
    SENT = "sent"
    """Handed to Twilio; no delivery report yet."""
    DELIVERED = "delivered"
    FAILED = "failed"
    """Refused by Twilio, or reported failed or undelivered."""
    SKIPPED = "skipped"
    """Not sent: the subscription ended after the approval (STOP, erasure)."""


@dataclass(frozen=True)
class Problem:
    """One reason a broadcast is refused: the field (and language) it is about."""

    loc: tuple[str | int, ...]
    message: str
    kind: str


@dataclass(frozen=True)
class Draft:
    """A broadcast as a supervisor wrote it, checked."""

    texts: Mapping[str, str]
    countries: tuple[str, ...]
    """Empty: every country."""
    languages: tuple[str, ...]
    """Empty: every language of the flow."""
    segments: Mapping[str, int]
    """SMS segments of each targeted language's text, as sent (Bambara in GSM-7)."""


def targeted(flow: Flow, languages: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(languages)
    return chosen or flow.languages


def sms_text(flow: Flow, language: str, text: str) -> str:
    """An alert's text as an SMS carries it (Bambara in its GSM-7 spelling, docs/spec.md §5)."""
    return spelled(flow, language, Channel.SMS, text.strip())


def check_draft(flow: Flow, *, texts: Mapping[str, str], countries: Iterable[str],
                languages: Iterable[str]) -> Draft | list[Problem]:
    """The draft, or every problem with it (each naming its field and language)."""
    problems: list[Problem] = []
    country_list = tuple(countries)
    language_list = tuple(languages)
    for index, country in enumerate(country_list):
        if country not in COUNTRIES:
            problems.append(Problem(("body", "countries", index),
                                    f"unknown country code {country!r} (one of "
                                    f"{', '.join(COUNTRIES)}; ZZ: other)", "unknown_country"))
    for index, language in enumerate(language_list):
        if language not in flow.languages:
            problems.append(Problem(("body", "languages", index),
                                    f"unknown language {language!r} (one of "
                                    f"{', '.join(flow.languages)})", "unknown_language"))
    for language in texts:
        if language not in flow.languages:
            problems.append(Problem(("body", "text", language),
                                    f"unknown language {language!r} (one of "
                                    f"{', '.join(flow.languages)})", "unknown_language"))
    segments: dict[str, int] = {}
    for language in targeted(flow, language_list):
        if language not in flow.languages:
            continue
        text = (texts.get(language) or "").strip()
        if not text:
            problems.append(Problem(("body", "text", language),
                                    f"the text in {language!r} is missing, and {language!r} "
                                    "is a targeted language", "missing_text"))
            continue
        sent = sms_text(flow, language, text)
        parts = sms.segments(sent)
        if parts > MAX_SEGMENTS:
            problems.append(Problem(("body", "text", language),
                                    f"the text in {language!r} takes {parts} SMS segments "
                                    f"({sms.encoding(sent)}), over {MAX_SEGMENTS}",
                                    "too_many_segments"))
            continue
        segments[language] = parts
    if problems:
        return problems
    return Draft(texts={language: texts[language].strip() for language in segments},
                 countries=tuple(dict.fromkeys(country_list)),
                 languages=tuple(dict.fromkeys(language_list)), segments=segments)


def may_approve(*, created_by: str, approver: str) -> bool:
    """Four eyes: a broadcast is approved by someone other than its author."""
    return created_by != approver


FOUR_EYES = "four eyes: a broadcast is approved by another supervisor or an admin, not by " \
            "the person who wrote it"


@dataclass(frozen=True)
class Broadcast:
    """A broadcast as stored (the store builds it; the API shows it)."""

    id: str
    status: BroadcastStatus
    texts: Mapping[str, str]
    countries: tuple[str, ...]
    languages: tuple[str, ...]
    urgent: bool
    recipients: int
    """Before approval: the subscriptions matching now; from approval: the audience fixed."""
    segments: Mapping[str, int]
    created_by: str
    created_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None
    cancelled_by: str | None = None
    cancelled_at: datetime | None = None
    send_at: datetime | None = None
    """Scheduled: when the quiet hours end."""
    finished_at: datetime | None = None


NO_COUNTS: Mapping[Outcome, int] = MappingProxyType({outcome: 0 for outcome in Outcome})


def start_status(*, urgent: bool, quiet_ends: datetime | None) -> BroadcastStatus:
    """The status an approval moves to: a non-urgent broadcast in quiet hours waits."""
    if quiet_ends is not None and not urgent:
        return BroadcastStatus.SCHEDULED
    return BroadcastStatus.SENDING


def may_send_now(*, urgent: bool, quiet_ends: datetime | None) -> bool:
    """Whether a sender may hand messages to Twilio now (quiet hours hold the others)."""
    return urgent or quiet_ends is None


def recipient_tag(broadcast_id: str, shard: int, pseudonym: str) -> str:
    return f"{broadcast_id}.{shard}.{pseudonym}"


_TAG = re.compile(r"([1-9][0-9]{0,11})\.(0|[1-9][0-9]?)\.([0-9a-f]{1,64})", re.ASCII)


def parse_recipient_tag(tag: str) -> tuple[str, int, str] | None:
    """(broadcast id, shard, pseudonym) of a status callback's tag; None if malformed."""
    found = _TAG.fullmatch(tag)
    if found is None or int(found.group(2)) >= SHARDS:
        return None
    return found.group(1), int(found.group(2)), found.group(3)


WHATSAPP_WINDOW_CODE = "63016"
"""Twilio's error for a free-form WhatsApp message outside the 24 hours after the
recipient's last message (or a template it refuses there): the alert goes by SMS."""


def status_letter(status: str, error_code: str) -> str | None:
    """A Twilio status report as a recipient's outcome: `d` delivered (or read), `f`
    failed, `x` refused by WhatsApp outside its window; None for a status on the way."""
    if status in ("delivered", "read"):
        return "d"
    if status in ("failed", "undelivered"):
        return "x" if error_code == WHATSAPP_WINDOW_CODE else "f"
    return None


ALERTS_A_MONTH = 4
"""The consent screen's promise (`alerts_consent` in the flow): at most this many
non-urgent alerts reach a subscriber in 30 days."""
MONTH = timedelta(days=30)


def _reaches(broadcast: Broadcast, country: str, languages: tuple[str, ...]) -> bool:
    if broadcast.countries and country not in broadcast.countries:
        return False
    return not (broadcast.languages and languages
                and not set(broadcast.languages) & set(languages))


def over_the_promise(candidate: Broadcast, recent: Iterable[Broadcast],
                     now: datetime) -> str | None:
    """Why approving `candidate` would break the consent's "at most 4 a month, except
    emergencies" for some subscribers (None when it would not): the country whose
    subscribers had `ALERTS_A_MONTH` non-urgent alerts approved in the last 30 days."""
    if candidate.urgent:
        return None
    approved = [b for b in recent if b.id != candidate.id and not b.urgent
                and b.approved_at is not None and b.approved_at > now - MONTH]
    for country in candidate.countries or COUNTRIES:
        reaching = [b for b in approved if _reaches(b, country, candidate.languages)]
        if len(reaching) >= ALERTS_A_MONTH:
            return (f"subscribers in {country} had {len(reaching)} non-urgent alerts in the "
                    f"last 30 days: the consent promises at most {ALERTS_A_MONTH} a month "
                    "(mark it urgent only if it is an emergency)")
    return None
