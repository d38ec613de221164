"""Follow-up check-ins in the admin API (docs/spec.md §11): one asked for now, what a
case lists (GET /cases/{reference}, in api.py), and the scheduling a return brings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from bot.cases import followups
from bot.cases.model import Case, CaseStatus
from bot.settings import Settings
from bot.store import keys, phone_state
from bot.store.cases import text_of
from bot.types import Channel

from .deps import AnyOperator, NowDep, RedisDep, actor
from .references import ReferencePath, path_reference
from .routing import AuthorisedRoute


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


class Scores(BaseModel):
    economic: float | None
    social: float | None
    psychosocial: float | None
    composite: float | None


class FollowupOut(BaseModel):
    """A check-in: `scheduled` → `sent` → `answered` | `expired`, or `cancelled`."""

    id: int
    due_at: datetime
    channel: Literal["sms", "voice"]
    status: followups.FollowupStatus
    scores: Scores | None = Field(description="Per dimension from 0 (struggling) to 1 "
                                  "(doing well) and their mean; null until answered")
    answered_at: datetime | None
    sent_at: datetime | None = None
    alarm: bool = Field(default=False, description="An answer the survey marks as an alarm "
                        "was given (in danger, deep distress)")
    call_asked: bool = Field(default=False, description="The migrant asked to be called")
    call_again: bool = Field(default=False, description="A second try: the check-in before "
                             "it reached nobody (a call not taken, an SMS not delivered)")

    @classmethod
    def of(cls, found: followups.Followup) -> FollowupOut:
        return cls(id=found.id, due_at=found.due_at, channel=channel_name(found.channel),
                   status=found.status,
                   scores=Scores.model_validate(found.scores) if found.scores else None,
                   answered_at=found.answered_at, sent_at=found.sent_at, alarm=found.alarm,
                   call_asked=found.call_asked, call_again=found.call_again)


def channel_name(channel: Channel) -> Literal["sms", "voice"]:
    return "voice" if channel is Channel.VOICE else "sms"


class FollowupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["sms", "voice"] | None = Field(
        default=None, description="Default: the case's channel when SMS or voice, else SMS")


class FollowupQueued(BaseModel):
    id: int
    channel: Literal["sms", "voice"]
    status: Literal["queued"] = "queued"


async def phone_opted_out(redis: Redis, reference: str) -> bool:
    pseudonym = await redis.hget(keys.case(reference), "phone_pseudonym")
    return bool(pseudonym) and await phone_state.opted_out(redis, text_of(pseudonym))


async def case_followups(redis: Redis, case: Case) -> list[FollowupOut]:
    """What GET /cases/{reference} lists (docs/spec.md §11)."""
    found = await followups.followups_of(redis, case, opted_out=await phone_opted_out(
        redis, case.reference))
    return [FollowupOut.of(entry) for entry in found]


async def after_update(redis: Redis, settings: Settings, case: Case, *,
                       now: datetime) -> None:
    """A case just made `returned` gets its check-ins at once (the worker would within a
    second: it reads every status change from the audit)."""
    if case.status is CaseStatus.RETURNED:
        await followups.schedule_returned(
            redis, reference=case.reference, returned_at=now,
            days=settings.followup_day_list, ttl=settings.followup_ttl)


router = APIRouter(tags=["admin"], route_class=AuthorisedRoute)


@router.post(
    "/cases/{reference:case_reference}/followups",
    response_model=FollowupQueued,
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"description": "No case has this reference"},
               409: {"description": "No follow-up consent, opted out, SMS not safe, "
                                    "withdrawn or erased: `detail` says which"},
               422: {"description": "Invalid input; `detail[].loc` names the field"}},
)
async def request_followup(
    reference: ReferencePath,
    redis: RedisDep,
    settings: SettingsDep,
    now: NowDep,
    operator: AnyOperator,
    wanted: FollowupIn | None = None,
) -> FollowupQueued:
    """A follow-up check-in now, by SMS or a call (docs/spec.md §11); 409 naming why it
    may not go (no follow-up consent, opted out, SMS not safe, withdrawn or erased)."""
    plain = path_reference(reference)
    found = await followups.request_now(
        redis, reference=plain, channel=Channel(wanted.channel) if wanted and wanted.channel
        else None, opted_out=await phone_opted_out(redis, plain),
        ttl=settings.followup_ttl, actor=actor(operator), now=now)
    return FollowupQueued(id=found.id, channel=channel_name(found.channel))
