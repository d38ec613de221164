"""What the engine remembers of one conversation, and what it asks the shell to do."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from bot.types import Channel, statically_frozen


def compact_json(value: Any) -> str:
    """`json.dumps(value, ensure_ascii=False, separators=(",", ":"))`, the same text, by orjson:
    a session is written every hop (~4k instructions, not the standard encoder's ~19k)."""
    return orjson.dumps(value).decode()


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

    def copy(self) -> Session:
        """A copy a turn may change (its answers, variables and history its own)."""
        return Session(self.state, self.language, dict(self.answers), dict(self.vars),
                       list(self.history), self.page, self.strikes, self.hint, self.resuming,
                       self.draft_id, self.consent_at, self.drafting, self.steps)

    def to_json(self) -> str:
        """A JSON array of the fields in order (Redis memory: no field names), trailing
        defaults left out; history as one space-separated string, flags as 0/1."""
        values = [self.state, self.language, self.vars, self.answers, " ".join(self.history),
                  self.draft_id, self.consent_at, int(self.drafting), self.steps, self.page,
                  self.strikes, self.hint, int(self.resuming)]
        end = len(values)
        while end > 2 and values[end - 1] == _POSITIONAL_DEFAULTS[end - 1]:
            end -= 1
        return compact_json(values[:end])

    @classmethod
    def from_json(cls, raw: str) -> Session:
        data: Any = json.loads(raw)
        if isinstance(data, dict):  # the layout before the compact one
            return cls(**data)
        values = [*data, *_POSITIONAL_DEFAULTS[len(data):]]
        return cls(state=values[0], language=values[1], vars=dict(values[2]),
                   answers=dict(values[3]), history=values[4].split() if values[4] else [],
                   draft_id=values[5], consent_at=values[6], drafting=bool(values[7]),
                   steps=values[8], page=values[9], strikes=values[10], hint=values[11],
                   resuming=bool(values[12]))


_POSITIONAL_DEFAULTS: tuple[Any, ...] = ("", "", {}, {}, "", None, None, 0, 0, 0, 0, None, 0)
"""`Session.to_json`'s array: state, language, vars, answers, history, draft_id,
consent_at, drafting, steps, page, strikes, hint, resuming (the ones most often at their
default last)."""


@statically_frozen
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
        return compact_json(data)

    def copy(self) -> Draft:
        """With answers of its own (`of` shares the session's)."""
        return Draft(self.state, self.language, dict(self.answers), self.history,
                     self.draft_id, self.consent_at)

    @classmethod
    def of(cls, session: Session) -> Draft | None:
        """The draft a session stands for (None when it keeps none)."""
        if session.draft_id is None:
            return None
        return cls(state=session.state, language=session.language, answers=session.answers,
                   history=tuple(session.history), draft_id=session.draft_id,
                   consent_at=session.consent_at)

    @classmethod
    def from_json(cls, raw: str) -> Draft:
        """A draft as stored, or the session it was stored as (see `phone_state`)."""
        data: Any = json.loads(raw)
        if isinstance(data, list):
            found = cls.of(Session.from_json(raw))
            if found is None:
                raise ValueError("a session without a draft stored as a draft")
            return found
        return cls(state=data["state"], language=data["language"],
                   answers=data.get("answers", {}), history=tuple(data.get("history", ())),
                   draft_id=data["draft_id"], consent_at=data.get("consent_at"))


@statically_frozen
class Profile:
    """What is remembered of a phone across conversations."""

    language: str | None = None
    opted_out: bool = False

    def to_json(self) -> str:
        """Compact (Redis memory): the language, then `!` when opted out; `?` for nothing."""
        return (self.language or "") + ("!" if self.opted_out else "") or "?"

    @classmethod
    def from_json(cls, raw: str) -> Profile:
        if raw.startswith("{"):  # the JSON layout before the compact one
            data: dict[str, Any] = json.loads(raw)
            return cls(language=data.get("language"), opted_out=bool(data.get("opted_out")))
        opted_out = raw.endswith("!")
        language = raw.rstrip("!?")
        return cls(language=language or None, opted_out=opted_out)


@statically_frozen
class CaseView:
    """What the conversation may know of a case when a migrant follows it."""

    reference: str
    kind: str
    status: str
    is_callers: bool
    can_withdraw: bool


@statically_frozen
class Opening:
    """Where a conversation the helpline starts opens (a follow-up check-in, docs/spec.md §11):
    its first screen, its language, and the answers it carries from the start."""

    state: str
    language: str
    answers: Mapping[str, str] = field(default_factory=dict)


@dataclass
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
    opening: Opening | None = None
    """A conversation the helpline starts: a restart opens it here."""


# Effects: what the shell must do after a step.


@statically_frozen
class SetLanguage:
    language: str


@statically_frozen
class SaveDraft:
    """Keep the turn's session as the phone's draft (`Draft.of` it): the step's last effect."""


@statically_frozen
class DiscardDraft:
    pass


@statically_frozen
class CreateCase:
    kind: str
    language: str
    answers: Mapping[str, str]
    consent_at: str | None
    text_version: str
    idempotency_key: str
    related: str = ""
    """The reference of the case this one follows from (a check-in's call-back)."""


@statically_frozen
class WithdrawCase:
    reference: str


@statically_frozen
class NeedOpenRequest:
    """The step needs the phone's open return request: load it, then step again."""


@statically_frozen
class RecordFollowup:
    """A check-in's survey is over: record its scores on the check-in (docs/spec.md §11)."""

    followup: str
    """`<reference>.<id>` of the check-in (`bot.engine.survey.FOLLOWUP_ANSWER`)."""
    scores: Mapping[str, float | None]
    alarm: bool
    call: bool
    """The migrant asked to be called."""


@statically_frozen
class SubscribeAlerts:
    """Subscribe the phone to alerts (consent given) for the country it is in now."""

    country: str
    language: str
    text_version: str
    """The flow's version: which consent text the migrant accepted."""


@statically_frozen
class UnsubscribeAlerts:
    """End the phone's alert subscription (STOP, an erasure)."""


Effect = (SetLanguage | SaveDraft | DiscardDraft | CreateCase | WithdrawCase | NeedOpenRequest
          | RecordFollowup | SubscribeAlerts | UnsubscribeAlerts)


# A phone's stored values as the planner reads them, what it read of the phone's cases,
# and what a turn writes back.
#
# Plain data shared by the planner (`bot.engine.plan`), which computes a `Commit`
# from a `PhoneState`, and the store (`bot.store.sessions`), which reads one and
# writes the other atomically. Values are the stored JSON (or compact) strings;
# `KEEP` leaves a stored value as it is, `DELETE` removes it.

DELETE = "-"
KEEP = ""
NO_EXPIRY = 0
SAME_AS_SESSION = "="
"""A draft value meaning: the session written in the same commit (`=s<c>` once stored)."""


@statically_frozen
class PhoneState:
    """A phone's stored values as raw JSON (None where absent), as a script read them."""

    session: str | None = None
    profile: str | None = None
    draft: str | None = None
    receipts: str | None = None
    unseen: str | None = None
    """What the phone was never told (idempotency keys of cases made meanwhile)."""
    decoded: Any = field(default=None, compare=False, repr=False)
    """What the planner made of `session`, `receipts` and `profile` when it wrote them (its own
    objects, opaque here): not decoded again. Not part of the state nor of its digest."""

    def joined(self) -> str:
        """What STEP compares with the stored state: the five values ('' where absent)
        joined by NUL (no hash: Redis compares the strings)."""
        return (f"{self.session or ''}\0{self.profile or ''}\0{self.draft or ''}\0"
                f"{self.receipts or ''}\0{self.unseen or ''}")

    def after(self, commit: Commit, decoded: Any = None) -> PhoneState:
        """The state once `commit` is written (`decoded`: its session, receipts and profile
        as the planner has them)."""
        return PhoneState(
            _written(self.session, commit.session_json),
            _written(self.profile, commit.profile_json),
            commit.session_json if commit.draft_json == SAME_AS_SESSION
            else _written(self.draft, commit.draft_json),
            _written(self.receipts, commit.receipts_json),
            _written(self.unseen, commit.unseen),
            decoded,
        )


NOTHING_STORED = PhoneState()


def _written(before: str | None, value: str) -> str | None:
    return before if value == KEEP else None if value == DELETE else value


@dataclass
class Commit:
    """What a turn writes: each value (KEEP, DELETE or the new one) and its TTL (s)."""

    session_json: str = KEEP
    session_ttl: int = 1
    profile_json: str = KEEP
    profile_ttl: int = NO_EXPIRY
    draft_json: str = KEEP
    draft_ttl: int = 1
    receipts_json: str = KEEP
    receipts_ttl: int = 1
    unseen: str = KEEP
    """DELETE once the phone has been told what it was never told."""


@statically_frozen
class Ttls:
    session: int
    profile: int
    draft: int
    survey: int = 0
    """A session in a follow-up survey lives this long instead (HELPLINE_FOLLOWUP_TTL)."""
    survey_states: frozenset[str] = frozenset()


@statically_frozen
class Reads:
    """What the conversation read of the phone's cases, for the turn to plan from."""

    looked_up: str | None = None
    """The typed reference that was looked up; `lookup` its case (None: no such case)."""
    lookup: CaseView | None = None
    open_request: CaseView | None = None
    open_known: bool = False
    """`open_request` was read (None then means: no return request open)."""


NO_READS = Reads()


def draft_of(state: PhoneState, session: Session | None) -> Draft | None:
    """The stored draft; one stored as the session's own payload is taken from the
    decoded session (no second decoding)."""
    if not state.draft:
        return None
    if state.draft == state.session and session is not None:
        draft = Draft.of(session)  # shares the session's answers: neither is changed
        if draft is not None:
            return draft
    return Draft.from_json(state.draft)
