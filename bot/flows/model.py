"""A loaded flow: plain, immutable values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

Text = Mapping[str, str]
"""One text in every language of its flow: language code -> words."""

NAV_BACK = "0"
NAV_HOME = "00"
NAV_MORE = "98"
RESERVED_KEYS = frozenset({NAV_BACK, NAV_HOME, NAV_MORE})

TRIGGER_ANSWER = "answer"
TRIGGER_DONE = "done"


class StateKind(StrEnum):
    MENU = "menu"
    QUESTION = "question"
    ACTION = "action"
    END = "end"


class Action(StrEnum):
    SET_LANGUAGE = "set_language"
    GIVE_CONSENT = "give_consent"
    REFUSE_CONSENT = "refuse_consent"
    CREATE_CASE = "create_case"
    LOOKUP_CASE = "lookup_case"
    WITHDRAW_CASE = "withdraw_case"
    DISCARD_DRAFT = "discard_draft"
    FIND_OPEN_REQUEST = "find_open_request"
    """Routes `open` when this phone has a return request still open (shared phones:
    ask whether it is the same person), else `none`."""
    SET_ANSWER = "set_answer"
    """`with: {answer: value}`: what the path taken already tells (a call-back's topic)."""
    FINISH_FOLLOWUP = "finish_followup"
    """The end of a follow-up check-in's survey (docs/spec.md §11): its scores are recorded, and
    a call-back is asked for when the answer named `with: {call: <answer>}` is yes."""
    BY_CHANNEL = "by_channel"
    """Routes by the channel of the conversation: `to: {sms: …, ussd: …, voice: …}`."""
    SUBSCRIBE_ALERTS = "subscribe_alerts"
    """`with: {country: <answer>}`: subscribes the phone to alerts for the country that
    answer holds; routes `done`, or `opted_out` (the phone sent STOP: nothing stored)."""


class FollowupRoute(StrEnum):
    CALL = "call"
    THANKS = "thanks"


class Dimension(StrEnum):
    """The dimensions of reintegration a follow-up survey scores (IOM's RSS)."""

    ECONOMIC = "economic"
    SOCIAL = "social"
    PSYCHOSOCIAL = "psychosocial"


class AlertsRoute(StrEnum):
    DONE = "done"
    OPTED_OUT = "opted_out"


class OpenRequestRoute(StrEnum):
    OPEN = "open"
    NONE = "none"


class LookupRoute(StrEnum):
    MINE = "mine"
    FOUND = "found"
    MISSING = "missing"


class Spelling(StrEnum):
    GSM7 = "gsm7"
    MODERN = "modern"


DEFAULT_SPELLING = {"bm": Spelling.GSM7}
"""docs/spec.md §5: Bambara is written in GSM-7 on SMS and USSD unless a flow says otherwise."""
GSM7_SPELLING: Mapping[str, str] = {
    "ɛ": "è", "Ɛ": "E", "ɔ": "ò", "Ɔ": "O", "ɲ": "ny", "Ɲ": "Ny", "ŋ": "ng", "Ŋ": "Ng",
    "’": "'", "‘": "'", "«": '"', "»": '"', "…": "...", "ç": "c",
}
"""`gsm7`: the Malian spelling used before 1982 (upper-case È and Ò are not GSM-7: E, O);
ç (only in the language menus' "Français") is not GSM-7 either."""

REQUIRED_TEXTS = (
    "invalid", "more", "back", "home", "resume", "check_number", "unknown_reference",
    "yes", "no", "withdraw_refused", "opted_out", "opted_in", "erase_confirm", "erased",
    "fallback", "erase_cancelled", "rate_limited", "emergency_numbers", "unseen_reference",
    "status_new", "status_contacted", "status_in_progress", "status_referred",
    "status_return_arranged", "status_returned", "status_closed", "status_withdrawn",
)  # fmt: skip


@dataclass(frozen=True)
class Option:
    key: str
    label: Text
    to: str
    value: str | None = None
    score: float | None = None
    """Survey: what this answer scores on its question's dimension, from 0 to 1."""
    alarm: bool = False
    """Survey: this answer asks for help now (in danger, deep distress)."""


@dataclass(frozen=True)
class State:
    name: str
    kind: StateKind
    line: int
    text: Text = field(default_factory=dict)
    options: tuple[Option, ...] = ()
    save: str | None = None
    validate: str | None = None
    action: Action | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    to: str | None = None
    routes: Mapping[str, str] = field(default_factory=dict)
    nav: bool = True
    draft: bool = False
    audio: Text = field(default_factory=dict)
    """Voice: a recording of the whole screen per language (a URL, or a file under audio/)."""
    many_options_because: str | None = None
    """Why this menu needs more than the house's 5 options (the lint asks for a reason)."""
    dimension: Dimension | None = None
    """Survey: the dimension this question scores (its options carry the scores)."""

    def option(self, key: str) -> Option | None:
        for option in self.options:
            if option.key == key:
                return option
        return None

    def targets(self) -> list[str]:
        """Every state this one can lead to."""
        found = [option.to for option in self.options]
        if self.to:
            found.append(self.to)
        found.extend(self.routes.values())
        return found


@dataclass(frozen=True)
class Contact:
    id: str
    number: str
    name: Text
    last_verified: date | None
    verified: bool


@dataclass(frozen=True, eq=False)
class Flow:
    """A whole flow; compared and hashed by identity (it is loaded once per process)."""

    id: str
    version: str
    path: Path
    languages: tuple[str, ...]
    start: str
    home: str
    first_start: str | None
    texts: Mapping[str, Text]
    states: Mapping[str, State]
    contacts: Mapping[str, Contact]
    tts: Mapping[str, str] = field(default_factory=dict)
    """Voice: the text-to-speech language of each flow language (fr: fr-FR); a language
    left out has no TTS voice and needs `audio:` recordings."""
    emergency: str | None = None
    """The state the emergency keywords (SOS, URGENCE…) open; None: the home menu."""
    spelling: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    first_start_on: Mapping[str, str] = field(default_factory=dict)
    """Where a phone never seen starts on one channel, when not at `first_start`
    (voice: a first call hears the main menu at once)."""
    alerts: str | None = None
    """The state the alert keywords open (subscribing to alerts); None: no keywords."""
    alert_keywords: tuple[str, ...] = ()
    """SMS words that open `alerts` (ALERTES, ALERTS and a Bambara word), as written."""
    """Per language, the letters replaced on SMS and USSD (written channels): `gsm7`
    gives Bambara's older GSM-7 spelling (ɛ→è…), a mapping its own letters (fr: ç→c)."""
    followup: str | None = None
    """The state a follow-up check-in opens (docs/spec.md §11), None when the flow has none."""

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def text(self, name: str, language: str) -> str:
        return self.texts[name].get(language) or self.texts[name][self.default_language]
