"""Every route × every kind of caller gets exactly the status docs/spec.md §7 implies."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from bot.admin.operators import Role, add_operator
from bot.settings import Settings
from tests.integration.admin_support import (
    API,
    T0,
    RecordedJobs,
    client_for,
    running_app,
    seed,
    tokens_for_every_role,
)

pytestmark = pytest.mark.deployments

_names = itertools.count()


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    needs: Role
    success: int
    body: dict[str, object] | None = None


ROUTES = [
    Route("GET", "/cases", Role.OPERATOR, 200),
    Route("GET", "/cases/{ref}", Role.OPERATOR, 200),
    Route("PATCH", "/cases/{ref}", Role.OPERATOR, 200, {"status": "contacted"}),
    Route("POST", "/cases/{ref}/notes", Role.OPERATOR, 201, {"text": "called"}),
    Route("POST", "/cases/{ref}/escalate", Role.OPERATOR, 200, {"reason": "r", "level": 1}),
    Route("POST", "/cases/{ref}/messages", Role.OPERATOR, 202, {"text": "hello"}),
    Route("GET", "/cases/{ref}/events", Role.OPERATOR, 200),
    Route("GET", "/stats", Role.OPERATOR, 200),
    Route("DELETE", "/cases/{ref}", Role.SUPERVISOR, 200),
    Route("GET", "/cases/export.csv", Role.SUPERVISOR, 200),
    Route("GET", "/operators", Role.ADMIN, 200),
    Route("POST", "/operators", Role.ADMIN, 201, {"name": "new-{n}", "role": "operator"}),
    Route("DELETE", "/operators/{victim}", Role.ADMIN, 204),
]
CALLERS = ["none", "bad", "revoked", "operator", "supervisor", "admin"]


def expected(route: Route, caller: str) -> int:
    if caller in ("none", "bad", "revoked"):
        return 401
    return route.success if Role(caller).includes(route.needs) else 403


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_role_matrix(redis: Redis, settings: Settings, route: Route, caller: str) -> None:
    tokens = await tokens_for_every_role(redis)
    tokens["bad"] = "not-a-token-" + "x" * 30
    reference = await seed(redis)
    victim = f"victim-{next(_names)}"
    await add_operator(redis, name=victim, role=Role.OPERATOR, now=T0)
    path = route.path.format(ref=reference, victim=victim)
    body = None
    if route.body is not None:
        body = {
            k: v.format(n=next(_names)) if isinstance(v, str) else v for k, v in route.body.items()
        }
    async with (
        running_app(settings, RecordedJobs()) as app,
        client_for(app, tokens.get(caller)) as client,
    ):
        response = await client.request(route.method, API + path, json=body)
    assert response.status_code == expected(route, caller), response.text
    if response.status_code == 401:
        assert response.headers["www-authenticate"] == "Bearer"


async def test_token_is_stored_hashed(redis: Redis) -> None:
    token = await add_operator(redis, name="ana", role=Role.OPERATOR, now=T0)
    for key in await redis.keys("*"):
        assert token not in key
        value = (
            await redis.hgetall(key) if await redis.type(key) == "hash" else await redis.get(key)
        )
        assert token not in str(value)


@pytest.mark.parametrize(("caller", "status"), [("none", 401), ("bad", 401), ("operator", 403)])
async def test_auth_comes_before_body_parsing(
    redis: Redis, settings: Settings, caller: str, status: int
) -> None:
    tokens = await tokens_for_every_role(redis)
    tokens["bad"] = "x" * 43
    async with (
        running_app(settings, RecordedJobs()) as app,
        client_for(app, tokens.get(caller)) as client,
    ):
        response = await client.post(
            f"{API}/operators", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == status
