"""The programme report in the admin API (docs/spec.md §11): JSON and CSV, supervisors only.

The figures and their suppression are `bot.cases.report`'s; this brings the facts it
counts up to date (the worker does it each second), reads them and audits each report
made, as an export is.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from bot.cases import followups, report
from bot.settings import Settings
from bot.store import audit

from .deps import NowDep, RedisDep, Supervisor, actor
from .followups_api import SettingsDep
from .routing import AuthorisedRoute

MAX_MONTHS = 120
DEFAULT_MONTHS = 12
CSV_COLUMNS = ("month", "figure", "group", "value")

router = APIRouter(tags=["reports"], route_class=AuthorisedRoute)


class Period(BaseModel):
    """The months a report covers. Any other parameter (`start=`, a typo) is a 422 naming
    it, never a report of the default months that looks like the one asked for."""

    model_config = ConfigDict(extra="forbid")

    start: str | None = Field(default=None, alias="from", pattern=report.MONTH,
                              description="YYYY-MM (default: 11 months before `to`)")
    end: str | None = Field(default=None, alias="to", pattern=report.MONTH,
                            description="YYYY-MM (default: this month)")

async def programme(redis: Redis, *, start: str, end: str) -> report.ProgrammeReport:
    """The report of the months from `start` to `end`, from the facts the worker keeps
    (`bot.store.report_reads`)."""
    return report.build(await report.tally(redis), start=start, end=end)


def _period(start: str | None, end: str | None, now: datetime) -> tuple[str, str]:
    last = end or report.month_of(now)
    if start is None:
        year, month = int(last[:4]), int(last[5:7]) - (DEFAULT_MONTHS - 1)
        while month < 1:
            year, month = year - 1, month + 12
        start = f"{year:04d}-{month:02d}"
    months = len(report.months_between(start, last))
    if months == 0 or months > MAX_MONTHS:
        raise RequestValidationError([{
            "type": "period", "loc": ("query", "from"),
            "msg": f"`from` must be a month at most {MAX_MONTHS} months before `to`",
            "input": start}])
    return start, last


async def _made(redis: Redis, settings: Settings, operator_actor: str, now: datetime,
                start: str, end: str, form: str) -> report.ProgrammeReport:
    # What the worker does each second, done now: the figures include the last minute.
    await followups.sync_from_audit(redis, days=settings.followup_day_list,
                                    ttl=settings.followup_ttl, now=now)
    found = await programme(redis, start=start, end=end)
    await audit.record(redis, reference=audit.NO_CASE, actor=operator_actor,
                       action="reported", at=now,
                       detail={"report": "programme", "from": start, "to": end,
                               "format": form})
    return found


@router.get("/reports/programme", response_model=report.ProgrammeReport,
            response_model_by_alias=True)
async def programme_report(redis: RedisDep, settings: SettingsDep, now: NowDep,
                           operator: Supervisor, period: Annotated[Period, Query()],
                           ) -> report.ProgrammeReport:
    """Per month: return requests by outcome, vulnerability, nationality and country;
    call-backs, emergencies; median days to return; check-ins and their mean scores. A
    count from 1 to 4, and a mean or median of fewer than 5 values, is null."""
    first, last = _period(period.start, period.end, now)
    return await _made(redis, settings, actor(operator), now, first, last, "json")


@router.get("/reports/programme.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}},
                             "description": "month, figure, group, value; suppressed: blank"}})
async def programme_report_csv(redis: RedisDep, settings: SettingsDep, now: NowDep,
                               operator: Supervisor,
                               period: Annotated[Period, Query()]) -> Response:
    """The same figures, one a line (a suppressed value is blank)."""
    first, last = _period(period.start, period.end, now)
    found = await _made(redis, settings, actor(operator), now, first, last, "csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(report.csv_rows(found))
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="programme-{first}-{last}.csv"'})
