"""What the engine remembers of one conversation, and what it asks the shell to do."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.types import Channel


@dataclass
class Session:
    """One conversation with one phone on one channel (stored as JSON)."""

    state: str
    language: str
    answers: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    page: int = 0
    strikes: int = 0
    hint: str | None = None
    resuming: bool = False
    draft_id: str | None = None
    consent_at: str | None = None
    drafting: bool = False
    """True once this conversation's answers are kept as a draft (a return request)."""
    steps: int = 0

    def to_json(self) -> str:
        # Fields are JSON values already: `vars` spares asdict's deep copy on every message.
        # Fields at their default are left out (Redis memory; from_json fills them in).
        data = {name: value for name, value in vars(self).items()
                if _SESSION_DEFAULTS.get(name, _KEPT) != value}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Session:
        data: dict[str, Any] = json.loads(raw)
        return cls(**data)


_KEPT = object()
_SESSION_DEFAULTS: dict[str, Any] = {
    "answers": {}, "vars": {}, "history": [], "page": 0, "strikes": 0, "hint": None,
    "resuming": False, "draft_id": None, "consent_at": None, "drafting": False, "steps": 0,
}


@dataclass(frozen=True)
class Draft:
    """An unfinished return request, kept `HELPLINE_DRAFT_TTL` for the next contact."""

    state: str
    language: str
    answers: Mapping[str, str]
    history: tuple[str, ...]
    draft_id: str
    consent_at: str | None

    def to_json(self) -> str:
        data = {**vars(self), "answers": dict(self.answers), "history": list(self.history)}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Draft:
        data: dict[str, Any] = json.loads(raw)
        data["history"] = tuple(data.get("history", ()))
        return cls(**data)


@dataclass(frozen=True)
class Profile:
    """What is remembered of a phone across conversations."""

    language: str | None = None
    opted_out: bool = False

    def to_json(self) -> str:
        data: dict[str, Any] = {}  # defaults left out (Redis memory)
        if self.language is not None:
            data["language"] = self.language
        if self.opted_out:
            data["opted_out"] = True
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Profile:
        data: dict[str, Any] = json.loads(raw)
        return cls(language=data.get("language"), opted_out=bool(data.get("opted_out")))


@dataclass(frozen=True)
class CaseView:
    """What the conversation may know of a case when a migrant follows it."""

    reference: str
    kind: str
    status: str
    is_callers: bool
    can_withdraw: bool


@dataclass(frozen=True)
class StepContext:
    """Everything a step needs besides the session and the input; filled by the shell."""

    channel: Channel
    profile: Profile | None = None
    draft: Draft | None = None
    lookups: Mapping[str, CaseView] = field(default_factory=dict)
    new_id: str = ""
    restart: bool = False
    open_request: CaseView | None = None
    """This phone's return request still open, when `open_request_known`."""
    open_request_known: bool = False


# Effects: what the shell must do after a step.


@dataclass(frozen=True)
class SetLanguage:
    language: str


@dataclass(frozen=True)
class SaveDraft:
    draft: Draft


@dataclass(frozen=True)
class DiscardDraft:
    pass


@dataclass(frozen=True)
class CreateCase:
    kind: str
    language: str
    answers: Mapping[str, str]
    consent_at: str | None
    text_version: str
    idempotency_key: str


@dataclass(frozen=True)
class WithdrawCase:
    reference: str


@dataclass(frozen=True)
class NeedOpenRequest:
    """The step needs the phone's open return request: load it, then step again."""


Effect = SetLanguage | SaveDraft | DiscardDraft | CreateCase | WithdrawCase | NeedOpenRequest
