"""FastAPI dependencies of the admin API: store, clock, jobs, authenticated operator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis

from bot.cases.jobs import CaseJobs
from bot.store.operators import Operator, Role, operator_for_token

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


async def current_operator(
    redis: RedisDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Operator:
    if credentials is None:
        raise _unauthenticated()
    operator = await operator_for_token(redis, credentials.credentials)
    if operator is None:
        raise _unauthenticated()
    return operator


def require(role: Role) -> Callable[[Operator], Awaitable[Operator]]:
    """A dependency admitting operators whose role includes `role` (else 403)."""

    async def check(operator: Annotated[Operator, Depends(current_operator)]) -> Operator:
        if not operator.role.includes(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs the {role} role")
        return operator

    return check


AnyOperator = Annotated[Operator, Depends(require(Role.OPERATOR))]
Supervisor = Annotated[Operator, Depends(require(Role.SUPERVISOR))]
Admin = Annotated[Operator, Depends(require(Role.ADMIN))]


def actor(operator: Operator) -> str:
    """How an operator appears in the audit trail."""
    return f"operator:{operator.name}"
