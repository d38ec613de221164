"""FastAPI dependencies of the admin API: store, clock, jobs, authenticated operator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis

from bot.admin.operators import Operator, Role, operator_for_token
from bot.admin.throttle import Throttle, client_key
from bot.cases.jobs import CaseJobs

_bearer = HTTPBearer(auto_error=False, description="An operator token (`helpline operators add`)")


def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.store.redis
    return redis


def get_jobs(request: Request) -> CaseJobs:
    jobs: CaseJobs = request.app.state.case_jobs
    return jobs


def get_now() -> datetime:
    return datetime.now(UTC)


RedisDep = Annotated[Redis, Depends(get_redis)]
JobsDep = Annotated[CaseJobs, Depends(get_jobs)]
NowDep = Annotated[datetime, Depends(get_now)]


def _unauthenticated() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing, unknown or revoked token",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def authenticate(request: Request, token: str | None) -> Operator:
    """The operator holding `token` (looked up once a request), else 401.

    A client past its quota of wrong tokens gets 429 instead, right token or not.
    """
    known: Operator | None = getattr(request.state, "operator", None)
    if known is not None:
        return known
    if not token:
        raise _unauthenticated()
    limit = request.app.state.settings.auth_failure_limit
    throttle = Throttle(get_redis(request), client_key(request), limit)
    await throttle.refuse_if_blocked()
    operator = await operator_for_token(get_redis(request), token)
    if operator is None:
        await throttle.count_failure()
        raise _unauthenticated()
    request.state.operator = operator
    return operator


async def current_operator(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Operator:
    return await authenticate(request, credentials.credentials if credentials else None)


def authorise(operator: Operator, role: Role) -> Operator:
    if not operator.role.includes(role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs the {role} role")
    return operator


# Role each `require(...)` dependency demands, so routes can check it before the body.
ROLE_OF_CHECK: dict[Callable[..., Awaitable[Operator]], Role] = {}


def require(role: Role) -> Callable[[Operator], Awaitable[Operator]]:
    """A dependency admitting operators whose role includes `role` (else 403)."""

    async def check(operator: Annotated[Operator, Depends(current_operator)]) -> Operator:
        return authorise(operator, role)

    ROLE_OF_CHECK[check] = role
    return check


AnyOperator = Annotated[Operator, Depends(require(Role.OPERATOR))]
Supervisor = Annotated[Operator, Depends(require(Role.SUPERVISOR))]
Admin = Annotated[Operator, Depends(require(Role.ADMIN))]


def actor(operator: Operator) -> str:
    """How an operator appears in the audit trail."""
    return f"operator:{operator.name}"
