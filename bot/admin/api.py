"""Routes of the admin API (docs/spec.md §7), a thin layer over the case store services."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from bot.admin import operators
from bot.cases import followups, jobs, lifecycle, referrals
from bot.cases import service as case_service
from bot.cases.export import export_csv
from bot.cases.model import AuditEvent, CaseStatus, JournalEntry
from bot.errors import (
    CaseNotFound,
    EscalationRefused,
    FollowupRefused,
    IllegalTransition,
    LastAdmin,
    MessageRefused,
    OperatorExists,
    OperatorNotFound,
    ReferralRefused,
)
from bot.store import audit, case_queries
from bot.store import cases as case_store

from . import broadcasts, console_api, followups_api, referrals_api, reports
from .deps import Admin, AnyOperator, JobsDep, NowDep, RedisDep, Supervisor, actor
from .followups_api import SettingsDep
from .references import ReferencePath
from .references import path_reference as _reference
from .routing import AuthorisedRoute
from .schemas import (
    CaseDetail,
    CasePage,
    CasePatch,
    CaseQuery,
    CaseSummary,
    Conflict,
    EscalationIn,
    MessageIn,
    MessageQueued,
    NoteIn,
    OperatorCreated,
    OperatorIn,
    OperatorOut,
    StatsOut,
    reasons_of,
)

PREFIX = "/admin/api/v1"
# A list reads answers too, only to say why a case has its priority (never returned).
LIST_FIELDS = (*case_queries.SUMMARY_FIELDS, "answers")

router = APIRouter(tags=["admin"], route_class=AuthorisedRoute)
router.include_router(console_api.router)
router.include_router(referrals_api.router)
router.include_router(reports.router)
router.include_router(followups_api.router)
router.include_router(broadcasts.router)

Responses = dict[int | str, dict[str, Any]]

_NOT_FOUND: Responses = {404: {"description": "No case has this reference"}}
_INVALID: Responses = {422: {"description": "Invalid input; `detail[].loc` names the field"}}
_CONFLICT: Responses = {
    409: {"model": Conflict, "description": "Refused in the case's present state"}
}


def _query_filter(q: str | None) -> tuple[str, str]:
    """`q` as a reference prefix (digits, `-` and spaces) or a fragment of the name."""
    if not q or not q.strip():
        return "", ""
    compact = q.strip().replace("-", "").replace(" ", "")
    if compact.isascii() and compact.isdigit():
        return compact[:8], ""
    return "", q.strip().lower()


@router.get("/cases", response_model=CasePage, responses=_INVALID)
async def list_cases(
    redis: RedisDep,
    _: AnyOperator,
    query: Annotated[CaseQuery, Query()],
) -> CasePage:
    """Cases in triage order: urgent, then high, then normal; oldest first within each."""
    prefix, fragment = _query_filter(query.q)
    page = await case_queries.page_of_cases(
        redis,
        case_filter=case_queries.CaseFilter(
            status=query.status,
            kind=query.kind,
            priority=query.priority,
            escalated=query.escalated,
            assignee=query.assignee,
            reference_prefix=prefix,
            name_fragment=fragment,
        ),
        limit=query.limit,
        cursor=query.cursor,
        fields=LIST_FIELDS,
    )
    return CasePage(
        items=[CaseSummary.from_row(row) for row in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/cases/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "Every case, no personal field"}},
)
async def export_cases(redis: RedisDep, now: NowDep, operator: Supervisor) -> StreamingResponse:
    """Every case as CSV (streamed), without personal fields; the export is audited."""
    await audit.record(
        redis,
        reference=audit.NO_CASE,
        actor=actor(operator),
        action="exported",
        at=now,
        detail={"format": "csv"},
    )
    return StreamingResponse(
        export_csv(redis),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cases.csv"'},
    )


async def _detail(redis: RedisDep, reference: str, operator_actor: str, now: NowDep) -> CaseDetail:
    case, journal = await case_service.read_case(
        redis, reference=reference, actor=operator_actor, now=now
    )
    return CaseDetail(
        **case.model_dump(),
        journal=journal,
        allowed_next=lifecycle.allowed_next(case.status),
        priority_reasons=reasons_of(case),
        referrals=await referrals.referrals_of(redis, reference),
        followup_consent=case.answers.get(followups.CONSENT_ANSWER),
        followups=await followups_api.case_followups(redis, case),
    )


@router.get(
    "/cases/{reference:case_reference}", response_model=CaseDetail, responses=_NOT_FOUND | _INVALID
)
async def get_case(
    reference: ReferencePath, redis: RedisDep, now: NowDep, operator: AnyOperator
) -> CaseDetail:
    """One case with its personal data and journal; the read is audited."""
    return await _detail(redis, _reference(reference), actor(operator), now)


@router.patch(
    "/cases/{reference:case_reference}",
    response_model=CaseDetail,
    responses=_NOT_FOUND | _INVALID | _CONFLICT,
)
async def update_case(
    reference: ReferencePath,
    change: CasePatch,
    redis: RedisDep,
    settings: SettingsDep,
    now: NowDep,
    operator: AnyOperator,
) -> CaseDetail:
    """Change status (through the lifecycle), priority or assignee (an active operator's
    name; null: unassign)."""
    plain = _reference(reference)
    if change.assignee is not None and not await operators.is_active(redis, change.assignee):
        raise RequestValidationError(
            [
                {
                    "type": "unknown_operator",
                    "loc": ("body", "assignee"),
                    "msg": "no active operator has this name",
                    "input": change.assignee,
                }
            ]
        )
    updated = await case_service.update_case(
        redis,
        reference=plain,
        actor=actor(operator),
        now=now,
        status=change.status,
        priority=change.priority,
        assignee=change.assignee
        if "assignee" in change.model_fields_set
        else case_service.UNCHANGED,
    )
    if change.status is not None:
        await followups_api.after_update(redis, settings, updated, now=now)
    return await _detail(redis, plain, actor(operator), now)


@router.post(
    "/cases/{reference:case_reference}/notes",
    response_model=JournalEntry,
    status_code=status.HTTP_201_CREATED,
    responses=_NOT_FOUND | _INVALID,
)
async def add_note(
    reference: ReferencePath, note: NoteIn, redis: RedisDep, now: NowDep, operator: AnyOperator
) -> JournalEntry:
    return await case_service.add_note(
        redis, reference=_reference(reference), actor=actor(operator), now=now, text=note.text
    )


@router.post(
    "/cases/{reference:case_reference}/escalate",
    response_model=CaseDetail,
    responses=_NOT_FOUND | _INVALID | _CONFLICT,
)
async def escalate(
    reference: ReferencePath,
    escalation: EscalationIn,
    redis: RedisDep,
    jobs_queue: JobsDep,
    now: NowDep,
    operator: AnyOperator,
) -> CaseDetail:
    """Raise the escalation level (1 or 2) and notify on-call."""
    plain = _reference(reference)
    await case_service.escalate(
        redis,
        reference=plain,
        actor=actor(operator),
        now=now,
        reason=escalation.reason,
        level=escalation.level,
    )
    await jobs_queue.enqueue(jobs.NOTIFY_ESCALATION, plain, escalation.level)
    return await _detail(redis, plain, actor(operator), now)


@router.post(
    "/cases/{reference:case_reference}/messages",
    response_model=MessageQueued,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_NOT_FOUND | _INVALID | _CONFLICT,
)
async def send_message(
    reference: ReferencePath,
    message: MessageIn,
    redis: RedisDep,
    jobs_queue: JobsDep,
    now: NowDep,
    operator: AnyOperator,
) -> MessageQueued:
    """Queue an SMS to the migrant; 409 when they opted out, SMS is not safe, or erased."""
    plain = _reference(reference)
    entry = await case_service.record_message(
        redis, reference=plain, actor=actor(operator), now=now, text=message.text)
    await jobs_queue.enqueue(jobs.SEND_CASE_MESSAGE, plain, entry.id)
    return MessageQueued(entry=entry)


@router.get(
    "/cases/{reference:case_reference}/events",
    response_model=list[AuditEvent],
    responses=_NOT_FOUND | _INVALID,
)
async def case_events(
    reference: ReferencePath, redis: RedisDep, _: AnyOperator
) -> list[AuditEvent]:
    """The case's audit trail, oldest first (read-only: no route edits or deletes events)."""
    plain = _reference(reference)
    if not await case_store.case_exists(redis, plain):
        raise CaseNotFound(plain)
    return await audit.case_events(redis, plain)


@router.delete(
    "/cases/{reference:case_reference}", response_model=CaseSummary, responses=_NOT_FOUND | _INVALID
)
async def erase_case(
    reference: ReferencePath, redis: RedisDep, now: NowDep, operator: Supervisor
) -> CaseSummary:
    """Erase the case's personal fields; the anonymous record stays (and counts)."""
    plain = _reference(reference)
    await case_service.erase_case(redis, reference=plain, actor=actor(operator), now=now)
    summary = await case_queries.case_summary(redis, plain)
    if summary is None:
        raise CaseNotFound(plain)
    return CaseSummary.from_row(summary)


@router.get("/stats", response_model=StatsOut)
async def stats(redis: RedisDep, _: AnyOperator) -> StatsOut:
    """Counts by kind, status, priority and creation day (erased cases included)."""
    found = await case_queries.case_stats(redis)
    return StatsOut(
        total=found.total,
        escalated=found.escalated,
        by_kind=dict(found.by_kind),
        by_status=dict(found.by_status),
        by_priority=dict(found.by_priority),
        by_day=dict(found.by_day),
    )


@router.get("/operators", response_model=list[OperatorOut])
async def list_operators(redis: RedisDep, _: Admin) -> list[OperatorOut]:
    return [OperatorOut.of(operator) for operator in await operators.list_operators(redis)]


@router.post(
    "/operators",
    response_model=OperatorCreated,
    status_code=status.HTTP_201_CREATED,
    responses={**_INVALID, 409: {"description": "An active operator has that name"}},
)
async def add_operator(new: OperatorIn, redis: RedisDep, now: NowDep, _: Admin) -> OperatorCreated:
    """Create an operator; its token is in this response only."""
    token = await operators.add_operator(redis, name=new.name, role=new.role, now=now)
    created = next(o for o in await operators.list_operators(redis) if o.name == new.name)
    return OperatorCreated(**OperatorOut.of(created).model_dump(), token=token)


@router.delete(
    "/operators/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        404: {"description": "No active operator has that name"},
        409: {"model": Conflict, "description": "The last active admin cannot be revoked"},
    },
)
async def revoke_operator(name: str, redis: RedisDep, now: NowDep, _: Admin) -> Response:
    await operators.revoke_operator(redis, name=name, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _json(code: int, body: dict[str, object]) -> JSONResponse:
    return JSONResponse(status_code=code, content=body)


def add_error_handlers(app: FastAPI) -> None:
    """Domain errors → the statuses of docs/spec.md §7 (never a traceback to an operator)."""

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        what = "operator" if isinstance(exc, OperatorNotFound) else "case"
        return _json(status.HTTP_404_NOT_FOUND, {"detail": f"no such {what}"})

    async def illegal(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, IllegalTransition)
        return _json(
            status.HTTP_409_CONFLICT,
            Conflict(
                detail=f"status cannot change that way from {exc.current}",
                current=CaseStatus(exc.current),
                allowed=[CaseStatus(s) for s in exc.allowed],
            ).model_dump(mode="json"),
        )

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return _json(status.HTTP_409_CONFLICT, {"detail": str(exc)})

    app.add_exception_handler(CaseNotFound, not_found)
    app.add_exception_handler(OperatorNotFound, not_found)
    app.add_exception_handler(IllegalTransition, illegal)
    for refused in (MessageRefused, EscalationRefused, OperatorExists, LastAdmin,
                    ReferralRefused, FollowupRefused):
        app.add_exception_handler(refused, conflict)


__all__ = ["PREFIX", "add_error_handlers", "router"]
