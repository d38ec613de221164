"""Value types of the case domain (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class CaseKind(StrEnum):
    RETURN_REQUEST = "return_request"
    CALLBACK = "callback"
    EMERGENCY = "emergency"


class CaseStatus(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    IN_PROGRESS = "in_progress"
    REFERRED = "referred"
    RETURN_ARRANGED = "return_arranged"
    RETURNED = "returned"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


class Priority(StrEnum):
    """In triage order: the most pressing first."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2}

YES = "yes"
URGENT_ANSWERS = ("under_18", "medical", "trafficking_or_violence", "alarm")
"""`alarm`: a follow-up check-in's call-back after an answer the flow marks as an alarm."""
HIGH_ANSWERS = ("pregnant", "disability")
URGENT_TOPICS = ("trafficking", "violence", "health")
"""A call-back's `topic` that makes it urgent (trafficking, violence, a medical need)."""
MAX_ESCALATION_LEVEL = 2


def derive_priority(kind: CaseKind, answers: Mapping[str, str]) -> Priority:
    """docs/spec.md §6: urgent for an emergency, a minor, a medical need, trafficking or
    violence (a call-back's topic counts); high for pregnancy or disability; else normal."""
    if kind is CaseKind.EMERGENCY or any(answers.get(k) == YES for k in URGENT_ANSWERS):
        return Priority.URGENT
    if answers.get("topic") in URGENT_TOPICS:
        return Priority.URGENT
    if any(answers.get(k) == YES for k in HIGH_ANSWERS):
        return Priority.HIGH
    return Priority.NORMAL


@dataclass(frozen=True, kw_only=True)
class NewCase:
    """What a conversation submits; the store adds reference, status and priority.

    `phone` is E.164; `created_at` is timezone-aware (UTC).
    """

    kind: CaseKind
    phone: str
    language: str
    channel: str
    answers: dict[str, str] = field(default_factory=dict)
    consent_given_at: datetime | None = None
    consent_text_version: str | None = None
    created_at: datetime
    related: str | None = None
    """The reference of the case this one follows from (a check-in's call-back)."""

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")

    @property
    def priority(self) -> Priority:
        return derive_priority(self.kind, self.answers)


class Consent(BaseModel):
    model_config = ConfigDict(frozen=True)

    given_at: datetime
    text_version: str


class Case(BaseModel):
    """One case as an operator reads it. Personal fields are None once erased."""

    model_config = ConfigDict(frozen=True)

    reference: str
    kind: CaseKind
    status: CaseStatus
    priority: Priority
    escalated: bool
    escalation_level: int
    assignee: str | None
    phone: str | None
    language: str
    channel: str
    answers: dict[str, str]
    consent: Consent | None
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None = None
    related: str | None = None
    """The case this one follows from: a check-in's call-back names the return case."""


@dataclass(frozen=True)
class CaseLookup:
    """A migrant's own view of a case: no personal field."""

    reference: str
    kind: CaseKind
    status: CaseStatus
    is_callers: bool


class AuditEvent(BaseModel):
    """One entry of a case's audit trail: who did what, when (never personal data)."""

    model_config = ConfigDict(frozen=True)

    id: str
    reference: str
    actor: str
    action: str
    at: datetime
    detail: dict[str, object]


class JournalKind(StrEnum):
    NOTE = "note"
    ESCALATION = "escalation"
    MESSAGE = "message"


class JournalEntry(BaseModel):
    """An operator's note, escalation reason or message to the migrant.

    Free text may hold personal data, so it lives here (erased with the case),
    while the audit event only points at it.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    kind: JournalKind
    author: str
    at: datetime
    text: str
