"""A phone's stored values as the planner reads them, what it read of the phone's cases,
and what a turn writes back.

Plain data shared by the planner (`bot.engine.plan`), which computes a `Commit`
from a `PhoneState`, and the store (`bot.store.sessions`), which reads one and
writes the other atomically. Values are the stored JSON (or compact) strings;
`KEEP` leaves a stored value as it is, `DELETE` removes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from bot.engine.session import CaseView, Draft, Session

DELETE = "-"
KEEP = ""
NO_EXPIRY = 0
SAME_AS_SESSION = "="
"""A draft value meaning: the session written in the same commit (`=s<c>` once stored)."""


@dataclass(frozen=True)
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

    def digest(self) -> str:
        """What STEP compares: SHA-1 of the five values ('' where absent) joined by NUL."""
        joined = (f"{self.session or ''}\0{self.profile or ''}\0{self.draft or ''}\0"
                  f"{self.receipts or ''}\0{self.unseen or ''}")
        return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 (a checksum, not security)

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


@dataclass(frozen=True)
class Ttls:
    session: int
    profile: int
    draft: int
    survey: int = 0
    """A session in a follow-up survey lives this long instead (HELPLINE_FOLLOWUP_TTL)."""
    survey_states: frozenset[str] = frozenset()


@dataclass(frozen=True)
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


def is_draft_of(session: Session, draft: Draft) -> bool:
    """`Draft.of(session) == draft`, without making the draft."""
    return (session.draft_id is not None and draft.draft_id == session.draft_id
            and draft.state == session.state and draft.language == session.language
            and draft.consent_at == session.consent_at
            and draft.history == tuple(session.history) and draft.answers == session.answers)
