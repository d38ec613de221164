"""The broadcasts API (docs/spec.md §10): supervisors write alerts, another one approves them.

Every step is audited in the broadcasts' stream (`created`, `approved`,
`cancelled` with the actor; `started` and `done` by the worker). The rules
(what a text may be, four eyes, when quiet hours hold a broadcast) are
`bot.outreach.broadcasts`'s; the records and audiences `bot.store.broadcasts`'s.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, StrictBool

from bot.cases.model import AuditEvent
from bot.flows.model import Flow
from bot.outreach.broadcasts import (
    FOUR_EYES,
    MAX_TEXT_CHARS,
    OPEN,
    SEND_BROADCAST,
    Broadcast,
    BroadcastStatus,
    Outcome,
    check_draft,
    may_approve,
    over_the_promise,
    start_status,
)
from bot.outreach.subscriptions import COUNTRIES, Country
from bot.settings import Settings
from bot.store import broadcasts as store
from bot.store import keys
from bot.store import subscriptions as subscription_store
from bot.store.cases import iso

from .deps import AnyOperator, JobsDep, NowDep, RedisDep, Supervisor, actor
from .routing import AuthorisedRoute

router = APIRouter(tags=["broadcasts"], route_class=AuthorisedRoute)

DEFAULT_PAGE = 20
RECENT = 200
"""Broadcasts read back to keep the consent's promise (a month's worth, and more)."""
MAX_PAGE = 100

LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]
IdPath = Annotated[str, Path(pattern=r"^[0-9]{1,12}$", description="A broadcast's id")]


def get_flow(request: Request) -> Flow:
    flow: Flow = request.app.state.webhooks.conversation.compiled.flow
    return flow


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


FlowDep = Annotated[Flow, Depends(get_flow)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


class BroadcastsQuery(BaseModel):
    """The query of `GET /broadcasts`: any other parameter is a 422 naming it."""

    model_config = {"extra": "forbid"}

    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,12}$")


class AudienceQuery(BaseModel):
    """The query of `GET /broadcasts/audience`: a misspelt filter (`country=NE`) is a 422
    naming it, never the whole audience counted as if it were the one asked for."""

    model_config = {"extra": "forbid"}

    countries: list[Country] | None = None
    languages: list[LanguageCode] | None = None


class BroadcastIn(BaseModel):
    model_config = {"extra": "forbid"}

    text: dict[str, Annotated[str, Field(max_length=MAX_TEXT_CHARS)]] = Field(
        description="The alert per language (`fr`, `en`, `bm`): every targeted language "
        "needs one, at most 3 SMS segments (Bambara counted in its GSM-7 spelling)")
    countries: list[Country] | None = Field(
        default=None, max_length=len(COUNTRIES),
        description="Countries where the recipients are (ISO codes: ML, NE, DZ, LY, MR, SN; "
        "ZZ: other); absent or empty: all")
    languages: list[LanguageCode] | None = Field(
        default=None, max_length=8,
        description="Recipients' languages (the flow's: fr, en, bm); absent or empty: all")
    urgent: StrictBool = Field(default=False, description="Sent at once, even in quiet hours")


def _name(operator_actor: str) -> str:
    """An operator's name as the API shows it (the audit's actor is `operator:<name>`)."""
    return operator_actor.removeprefix("operator:")


def _name_if(operator_actor: str | None) -> str | None:
    return None if operator_actor is None else _name(operator_actor)


class Counts(BaseModel):
    queued: int = 0
    sent: int = 0
    """Handed to Twilio, no delivery report yet."""
    delivered: int = 0
    failed: int = 0
    skipped: int = 0


class BroadcastOut(BaseModel):
    id: str
    status: BroadcastStatus
    text: dict[str, str]
    countries: list[str]
    languages: list[str]
    urgent: bool
    recipients: int = Field(description="Before approval: subscriptions matching now; from "
                            "approval: the audience fixed")
    segments: dict[str, int]
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    cancelled_by: str | None
    cancelled_at: datetime | None
    send_at: datetime | None = Field(description="Scheduled: when the quiet hours end")
    finished_at: datetime | None
    counts: Counts

    @classmethod
    def of(cls, broadcast: Broadcast, counts: dict[Outcome, int]) -> BroadcastOut:
        return cls(
            id=broadcast.id, status=broadcast.status, text=dict(broadcast.texts),
            countries=list(broadcast.countries), languages=list(broadcast.languages),
            urgent=broadcast.urgent, recipients=broadcast.recipients,
            segments=dict(broadcast.segments), created_by=_name(broadcast.created_by),
            created_at=broadcast.created_at, approved_by=_name_if(broadcast.approved_by),
            approved_at=broadcast.approved_at, cancelled_by=_name_if(broadcast.cancelled_by),
            cancelled_at=broadcast.cancelled_at, send_at=broadcast.send_at,
            finished_at=broadcast.finished_at,
            counts=Counts(**{str(outcome): count for outcome, count in counts.items()}))


class BroadcastPage(BaseModel):
    items: list[BroadcastOut]
    next_cursor: str | None


class AudienceOut(BaseModel):
    recipients: int


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such broadcast"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Refused in the broadcast's present status"}}


async def _found(redis: Any, broadcast_id: str) -> Broadcast:
    found = await store.read(redis, broadcast_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such broadcast")
    return found


async def _out(redis: Any, broadcast: Broadcast) -> BroadcastOut:
    (counts,) = await store.counts(redis, [broadcast.id])
    return BroadcastOut.of(broadcast, counts)


@router.post("/broadcasts", response_model=BroadcastOut, status_code=status.HTTP_201_CREATED,
             responses={422: {"description": "`loc` names the field and the language"}})
async def create_broadcast(new: BroadcastIn, redis: RedisDep, now: NowDep, flow: FlowDep,
                           operator: Supervisor) -> BroadcastOut:
    """Write an alert; it waits for another supervisor's approval (four eyes)."""
    checked = check_draft(flow, texts=new.text,
                          countries=[str(country) for country in new.countries or ()],
                          languages=new.languages or ())
    if isinstance(checked, list):
        raise RequestValidationError([{"loc": problem.loc, "msg": problem.message,
                                       "type": problem.kind} for problem in checked])
    recipients = await subscription_store.audience_size(
        redis, countries=checked.countries, languages=checked.languages)
    broadcast_id = await store.create(redis, draft=checked, urgent=new.urgent,
                                      recipients=recipients, actor=actor(operator), now=now)
    return await _out(redis, await _found(redis, broadcast_id))


@router.get("/broadcasts", response_model=BroadcastPage)
async def list_broadcasts(
    redis: RedisDep, _: AnyOperator, query: Annotated[BroadcastsQuery, Query()],
) -> BroadcastPage:
    """Broadcasts, newest first, with their live counts."""
    limit = query.limit
    found = await store.newest(redis, limit=limit + 1, before=query.cursor)
    page, more = found[:limit], len(found) > limit
    counted = await store.counts(redis, [broadcast.id for broadcast in page])
    return BroadcastPage(items=[BroadcastOut.of(b, c) for b, c in zip(page, counted, strict=True)],
                         next_cursor=page[-1].id if more and page else None)


@router.get("/broadcasts/audience", response_model=AudienceOut)
async def audience(
    redis: RedisDep, _: AnyOperator, query: Annotated[AudienceQuery, Query()],
) -> AudienceOut:
    """How many subscriptions match these countries and languages now (the composer's count)."""
    return AudienceOut(recipients=await subscription_store.audience_size(
        redis, countries=[str(country) for country in query.countries or ()],
        languages=query.languages or ()))


@router.get("/broadcasts/{broadcast_id}", response_model=BroadcastOut, responses=_NOT_FOUND)
async def get_broadcast(broadcast_id: IdPath, redis: RedisDep, _: AnyOperator) -> BroadcastOut:
    return await _out(redis, await _found(redis, broadcast_id))


@router.get("/broadcasts/{broadcast_id}/events", response_model=list[AuditEvent],
            responses=_NOT_FOUND)
async def broadcast_events(broadcast_id: IdPath, redis: RedisDep,
                           _: AnyOperator) -> list[AuditEvent]:
    """The broadcast's audit trail, oldest first."""
    await _found(redis, broadcast_id)
    return await store.events(redis, broadcast_id)


@router.post("/broadcasts/{broadcast_id}/approve", response_model=BroadcastOut,
             responses={**_NOT_FOUND, **_CONFLICT,
                        403: {"description": "The author may not approve (four eyes)"}})
async def approve_broadcast(broadcast_id: IdPath, redis: RedisDep, now: NowDep,
                            settings: SettingsDep, jobs_queue: JobsDep,
                            operator: Supervisor) -> BroadcastOut:
    """A second supervisor (or an admin) approves: the audience is fixed now, then the
    worker sends (at once, or when the quiet hours end for a non-urgent broadcast)."""
    found = await _found(redis, broadcast_id)
    if not may_approve(created_by=found.created_by, approver=actor(operator)):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{FOUR_EYES}; {_name(found.created_by)} wrote this one")
    if found.status is not BroadcastStatus.AWAITING_APPROVAL:
        raise HTTPException(status.HTTP_409_CONFLICT, f"the broadcast is {found.status}, "
                            "not awaiting approval")
    too_many = over_the_promise(found, await store.newest(redis, limit=RECENT), now)
    if too_many is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, too_many)
    fixed = await asyncio.gather(*(
        store.fix_audience(redis, broadcast_id, shard, countries=found.countries,
                           languages=found.languages) for shard in keys.SHARDS))
    quiet = settings.quiet()
    quiet_ends = quiet.ends_after(now) if quiet is not None else None
    to = start_status(urgent=found.urgent, quiet_ends=quiet_ends)
    fields = {"approved_by": actor(operator), "approved_at": iso(now),
              "recipients": str(sum(fixed))}
    if to is BroadcastStatus.SCHEDULED and quiet_ends is not None:
        fields["send_at"] = iso(quiet_ends)
    moved = await store.move(redis, broadcast_id,
                             from_statuses={BroadcastStatus.AWAITING_APPROVAL}, to=to,
                             actor=actor(operator), now=now, action="approved",
                             detail={"recipients": sum(fixed), "status": str(to)},
                             active="+", fields=fields)
    if not moved.moved:
        if moved.status == BroadcastStatus.CANCELLED:
            for shard in keys.SHARDS:
                await store.drop_audience(redis, broadcast_id, shard)
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"the broadcast is {moved.status}, not awaiting approval")
    if to is BroadcastStatus.SENDING:
        for shard in keys.SHARDS:
            await jobs_queue.enqueue(SEND_BROADCAST, broadcast_id, shard)
    return await _out(redis, await _found(redis, broadcast_id))


@router.post("/broadcasts/{broadcast_id}/cancel", response_model=BroadcastOut,
             responses={**_NOT_FOUND, **_CONFLICT})
async def cancel_broadcast(broadcast_id: IdPath, redis: RedisDep, now: NowDep,
                           operator: Supervisor) -> BroadcastOut:
    """Stop a broadcast: nothing not yet handed to Twilio is sent."""
    await _found(redis, broadcast_id)
    moved = await store.move(redis, broadcast_id, from_statuses=OPEN,
                             to=BroadcastStatus.CANCELLED, actor=actor(operator), now=now,
                             action="cancelled", active="-",
                             fields={"cancelled_by": actor(operator), "cancelled_at": iso(now)})
    if not moved.moved:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"the broadcast is {moved.status}: nothing to cancel")
    if moved.status != BroadcastStatus.AWAITING_APPROVAL:
        await asyncio.gather(*(store.close_share(redis, broadcast_id, shard, cancel=True)
                               for shard in keys.SHARDS))
    return await _out(redis, await _found(redis, broadcast_id))
