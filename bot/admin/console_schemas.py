"""JSON bodies of the reads the operators' console needs (search, live changes, picker…)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bot.admin.operators import Role

from .schemas import CaseSummary


class Me(BaseModel):
    """The signed-in operator and the console's settings."""

    name: str
    role: Role
    idle_minutes: int = Field(description="Sign-out after this long without activity")
    ack_sla_minutes: int = Field(description="An urgent case untaken this long is overdue")
    primero: bool = Field(default=False, description="Cases can be referred to Primero")


class Assignee(BaseModel):
    name: str
    role: Role


class MatchedBy(StrEnum):
    REFERENCE = "reference"
    PHONE = "phone"
    NAME = "name"


class SearchHit(CaseSummary):
    matched_by: MatchedBy


class SearchResult(BaseModel):
    items: list[SearchHit]
    searched_by: list[MatchedBy] = Field(description="What the query was read as")
    name_cursor: str | None = Field(
        description="Set when the name search stopped at its budget: pass as `cursor` to go on"
    )


class ChangeOut(BaseModel):
    reference: str
    actor: str = Field(description="Who made the change: `operator:<name>`, `migrant`, …")
    action: str
    at: str
    detail: dict[str, object]


MAX_SEARCH_CHARS = 64
DEFAULT_TREND_DAYS = 14
MAX_TREND_DAYS = 90


class SearchQuery(BaseModel):
    """The query of `GET /search`: any other parameter (`curser`, a typo) is a 422 naming it."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(min_length=1, max_length=MAX_SEARCH_CHARS)
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,16}$",
                               description="the last answer's `name_cursor`")


class TrendsQuery(BaseModel):
    """The query of `GET /stats/trends`: any other parameter (`day`) is a 422 naming it, not
    the default period shown as if asked for."""

    model_config = ConfigDict(extra="forbid")

    days: int = Field(default=DEFAULT_TREND_DAYS, ge=1, le=MAX_TREND_DAYS)


class ChangesQuery(BaseModel):
    """The query of `GET /changes`: any other parameter (`since`, a typo) is a 422 naming
    it, not an answer that looks like no change."""

    model_config = ConfigDict(extra="forbid")

    after: str | None = Field(
        default=None, pattern=r"^[0-9]{1,19}-[0-9]{1,19}$",
        description="The `cursor` of the last answer (an audit stream id); absent: only the "
        "cursor to start from")


class ChangesOut(BaseModel):
    cursor: str = Field(description="Pass as `after` on the next poll")
    items: list[ChangeOut]


class CannedReply(BaseModel):
    id: str
    texts: dict[str, str] = Field(description="The reply in each language of the flow")


class AnswerLabel(BaseModel):
    field: str = Field(description="Key of the answer in a case's `answers`")
    label: dict[str, str] = Field(description="The flow's question, by language")
    values: dict[str, dict[str, str]] = Field(
        description="For a choice: the flow's label of each stored value, by language"
    )


class TrendsOut(BaseModel):
    days: int
    by_day_kind: dict[str, dict[str, int]] = Field(
        description="Creation day (YYYY-MM-DD, UTC) → kind → cases created"
    )
    median_first_contact_minutes: float | None = Field(
        description="Median minutes from creation to an operator's first status change, "
        "over cases created in the window (null when none)"
    )
    first_contacts: int = Field(description="How many cases the median is taken over")
    complete: bool = Field(
        description="False when the window held more events than one call reads "
        "(20,000): the figures then cover its oldest part"
    )
