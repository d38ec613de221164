"""JSON bodies of the admin API."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from bot.admin.followups_api import FollowupOut
from bot.admin.operators import Operator, Role
from bot.cases.model import (
    HIGH_ANSWERS,
    URGENT_ANSWERS,
    YES,
    Case,
    CaseKind,
    CaseStatus,
    JournalEntry,
    Priority,
    derive_priority,
)
from bot.cases.referrals import Referral, ReferralConsent, ReferralStatus, ReferralSystem
from bot.store.case_queries import MAX_PAGE_SIZE

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,31}$"
MAX_NOTE_CHARS = 4000
# Three GSM-7 segments: the longest SMS the helpline sends.
MAX_MESSAGE_CHARS = 459
DEFAULT_PAGE_SIZE = 50
MAX_QUERY_CHARS = 64


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseQuery(Strict):
    """The query of `GET /cases`: any other parameter (`stauts=new`, a typo) is a 422 naming
    it, never a page that silently ignores the filter."""

    status: CaseStatus | None = None
    kind: CaseKind | None = None
    priority: Priority | None = None
    escalated: bool | None = None
    assignee: str | None = Field(default=None, max_length=32)
    q: str | None = Field(default=None, max_length=MAX_QUERY_CHARS,
                          description="a reference (or its start) or a part of a name")
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,16}$")


class CaseSummary(BaseModel):
    """A case in a list: no personal field."""

    reference: str
    kind: CaseKind
    status: CaseStatus
    priority: Priority
    escalated: bool
    escalation_level: int
    assignee: str | None
    language: str
    channel: str
    created_at: datetime
    updated_at: datetime
    erased: bool
    priority_reasons: list[str] = Field(
        default_factory=list,
        description="Why the case has its priority: `emergency`, the answers that raised it "
        "(`under_18`, `medical`, …), or `operator` when an operator set it; empty if unknown",
    )

    @classmethod
    def from_row(cls, row: dict[str, str]) -> CaseSummary:
        """A summary from record fields; `answers`, when read, gives the priority's reason
        (the answers themselves are not kept)."""
        return cls(
            reference=row["reference"],
            kind=CaseKind(row["kind"]),
            status=CaseStatus(row["status"]),
            priority=Priority(row["priority"]),
            escalated=row["escalated"] == "1",
            escalation_level=int(row["escalation_level"] or 0),
            assignee=row["assignee"] or None,
            language=row["language"],
            channel=row["channel"],
            created_at=datetime.fromisoformat(row["created_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
            erased=bool(row["erased_at"]),
            priority_reasons=priority_reasons(row),
        )


def priority_reasons(row: dict[str, str]) -> list[str]:
    """Why a case has its priority (no personal data: names of answers, not their text)."""
    kind, priority = CaseKind(row["kind"]), Priority(row["priority"])
    if kind is CaseKind.EMERGENCY:
        return ["emergency"] if priority is Priority.URGENT else ["operator"]
    raw = row.get("answers")
    if not raw:
        return []
    try:
        answers = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(answers, dict):
        return []
    if derive_priority(kind, answers) is not priority:
        return ["operator"]
    raised_by = URGENT_ANSWERS if priority is Priority.URGENT else HIGH_ANSWERS
    return [key for key in raised_by if answers.get(key) == YES]


class CasePage(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when there is none. "
        "A page may be shorter than `limit` while this is set."
    )


class CaseDetail(Case):
    journal: list[JournalEntry]
    allowed_next: list[CaseStatus]
    priority_reasons: list[str] = Field(
        default_factory=list, description="Why the case has its priority (as in a list)"
    )
    referrals: list[Referral] = Field(
        default_factory=list, description="Referrals to partners (Primero), oldest first")
    followup_consent: str | None = Field(
        default=None, description="`yes` or `no`: whether the migrant agreed to be "
        "contacted after the return (docs/spec.md §11); null when not asked (or erased)")
    followups: list[FollowupOut] = Field(
        default_factory=list, description="Follow-up check-ins (docs/spec.md §11)")


def reasons_of(case: Case) -> list[str]:
    return priority_reasons(
        {
            "kind": case.kind,
            "priority": case.priority,
            "answers": json.dumps(case.answers) if case.answers else "",
        }
    )


def _patch_schema(schema: dict[str, Any]) -> None:
    """What `_something_to_change` enforces, said in the OpenAPI document too."""
    schema["minProperties"] = 1
    for name in ("status", "priority"):
        field = schema["properties"][name]
        field["anyOf"] = [kind for kind in field["anyOf"] if kind.get("type") != "null"]


class CasePatch(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)

    status: CaseStatus | None = None
    priority: Priority | None = None
    assignee: str | None = Field(default=None, pattern=NAME_PATTERN)

    @model_validator(mode="after")
    def _something_to_change(self) -> CasePatch:
        if not self.model_fields_set:
            raise ValueError("give at least one of status, priority, assignee")
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status cannot be null")
        if "priority" in self.model_fields_set and self.priority is None:
            raise ValueError("priority cannot be null")
        return self


class NoteIn(Strict):
    text: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)


class EscalationIn(Strict):
    reason: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)
    # StrictInt: a Literal[1, 2] takes `true` for 1 (and 1.0, 2.0).
    level: StrictInt = Field(ge=1, le=2, json_schema_extra={"enum": [1, 2]})


class MessageIn(Strict):
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class MessageQueued(BaseModel):
    entry: JournalEntry
    status: Literal["queued"] = "queued"


class ReferralIn(Strict):
    system: ReferralSystem = ReferralSystem.PRIMERO
    consent: ReferralConsent = Field(
        description="Who gave the consent to refer: the migrant (in the flow), or the "
        "operator recording it (on a call); audited with the operator's name")
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS,
                             description="For the helpline's team (not sent to the partner)")


class ReferralQueued(BaseModel):
    id: str
    system: ReferralSystem
    status: ReferralStatus


class Conflict(BaseModel):
    detail: str
    current: CaseStatus | None = None
    allowed: list[CaseStatus] | None = None


class StatsOut(BaseModel):
    total: int
    escalated: int
    by_kind: dict[str, int]
    by_status: dict[str, int]
    by_priority: dict[str, int]
    by_day: dict[str, int]


class OperatorIn(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    role: Role


class OperatorOut(BaseModel):
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, operator: Operator) -> OperatorOut:
        return cls(
            name=operator.name,
            role=operator.role,
            created_at=datetime.fromisoformat(operator.created_at),
            revoked_at=datetime.fromisoformat(operator.revoked_at) if operator.revoked_at else None,
        )


class OperatorCreated(OperatorOut):
    token: str = Field(description="Shown once; only its hash is stored.")
