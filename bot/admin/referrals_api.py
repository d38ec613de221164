"""Referral of a case to a protection partner's system (docs/spec.md §12), an operator's action."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from bot.cases import referrals
from bot.settings import Settings

from .deps import AnyOperator, NowDep, RedisDep, actor
from .references import ReferencePath, path_reference
from .routing import AuthorisedRoute
from .schemas import Conflict, ReferralIn, ReferralQueued

router = APIRouter(tags=["admin"], route_class=AuthorisedRoute)

_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No case has this reference"},
    409: {"model": Conflict, "description": "Primero is not configured, the case is erased, "
          "or a referral of it is pending or sent already"},
    422: {"description": "Invalid input (no `consent`, say); `detail[].loc` names the field"},
}


@router.post("/cases/{reference:case_reference}/referrals", response_model=ReferralQueued,
             status_code=status.HTTP_202_ACCEPTED, responses=_RESPONSES)
async def refer_case(reference: ReferencePath, referral: ReferralIn, request: Request,
                     redis: RedisDep, now: NowDep, operator: AnyOperator) -> ReferralQueued:
    """Refer the case to Primero, with the consent said (audited: `referred`, with the
    operator and the consent); the worker sends it, once (`GET /cases/{reference}` shows
    how it went)."""
    settings: Settings = request.app.state.settings
    made = await referrals.refer_case(
        redis, reference=path_reference(reference), actor=actor(operator), now=now,
        system=referral.system, consent=referral.consent, note=referral.note,
        configured=settings.primero_configured)
    return ReferralQueued(id=made.id, system=made.system, status=made.status)
