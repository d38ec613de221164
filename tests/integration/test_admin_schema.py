"""A bounded schemathesis run against `/openapi.json`: no input yields a 5xx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from redis.asyncio import Redis
from schemathesis.checks import not_a_server_error, response_schema_conformance
from starlette.types import Receive, Scope, Send

from bot.app import create_app
from bot.settings import Settings
from bot.store import cases, operators
from bot.store.operators import Role
from tests.integration.admin_support import T0, RecordedJobs, return_request
from tests.redis_server import RedisServer

EXAMPLES_PER_OPERATION = 15
# Only for reading /openapi.json at collection time: redis-py connects lazily.
NO_SERVER = "redis://127.0.0.1:1/0"


class SwappableApp:
    """The app schemathesis calls; a fixture points it at the real-Redis app.

    Schemathesis' client runs each call on a loop of its own without the
    lifespan, so each HTTP call runs inside a lifespan of its own here.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.token = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        async with self.app.router.lifespan_context(self.app):
            await self.app(scope, receive, send)


target = SwappableApp(create_app(Settings(redis_url=NO_SERVER), case_jobs=RecordedJobs()))
schema = schemathesis.openapi.from_asgi("/openapi.json", target)


@pytest.fixture
def live_app(redis_server: RedisServer, tmp_path: Path) -> Iterator[SwappableApp]:
    redis_server.flush()

    async def seed() -> str:
        redis = Redis.from_url(redis_server.url, decode_responses=True)
        try:
            for minute in range(5):
                await cases.create_case(redis, new_case=return_request(minutes=minute))
            return await operators.add_operator(redis, name="root", role=Role.ADMIN, now=T0)
        finally:
            await redis.aclose()

    target.token = asyncio.run(seed())
    previous = target.app
    target.app = create_app(
        Settings(redis_url=redis_server.url, data_dir=tmp_path / "var"), case_jobs=RecordedJobs()
    )
    yield target
    target.app = previous


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_no_server_error(case: schemathesis.Case, live_app: SwappableApp) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {live_app.token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
