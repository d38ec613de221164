"""A stolen or guessed operator token, and an admin locking everyone out (docs/spec.md §7)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from bot.admin import operators
from bot.admin.operators import Role, add_operator
from bot.app import create_app
from bot.cli import main
from bot.settings import Env, Settings, get_settings
from tests.integration.admin_support import API, T0, RecordedJobs
from tests.integration.webhooks_support import gateway_settings
from tests.redis_server import RedisServer

ATTEMPTS = 60


@pytest.fixture
def prod(redis_server: RedisServer, tmp_path: Path) -> Settings:
    return gateway_settings(redis_server.url, tmp_path, env=Env.PROD)


@pytest.fixture
async def app(prod: Settings, redis: Redis) -> AsyncIterator[FastAPI]:
    app = create_app(prod, case_jobs=RecordedJobs())
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def client_at(app: FastAPI, address: str,
                    token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000",
                                 headers=headers) as client:
        yield client


async def test_wrong_tokens_in_a_row_are_throttled_before_the_sixtieth(
        app: FastAPI, redis: Redis) -> None:
    good = await add_operator(redis, name="ana", role=Role.OPERATOR, now=T0)
    statuses: list[int] = []
    async with client_at(app, "203.0.113.7") as attacker:
        for attempt in range(ATTEMPTS):
            response = await attacker.get(f"{API}/cases",
                                          headers={"Authorization": f"Bearer guess-{attempt}"})
            statuses.append(response.status_code)
            if response.status_code == 429:
                retry_after = int(response.headers["retry-after"])
                break
        assert statuses[0] == 401
        assert statuses[-1] == 429, statuses
        assert len(statuses) < ATTEMPTS
        assert 0 < retry_after <= 15 * 60
        # Blocked means blocked: even a right token from that address waits.
        right = await attacker.get(f"{API}/cases", headers={"Authorization": f"Bearer {good}"})
        assert right.status_code == 429
    async with client_at(app, "198.51.100.20", good) as colleague:
        assert (await colleague.get(f"{API}/cases")).status_code == 200
    assert "203.0.113.7" not in str(await redis.keys("*"))


async def test_failed_sign_ins_are_throttled_too(app: FastAPI, redis: Redis) -> None:
    """The console signs in by calling the API with the typed token."""
    async with client_at(app, "203.0.113.8") as browser:
        answers = [(await browser.get(f"{API}/stats",
                                      headers={"Authorization": "Bearer typo"})).status_code
                   for _ in range(ATTEMPTS)]
    assert 429 in answers and answers.index(429) < ATTEMPTS - 1
    assert set(answers[answers.index(429):]) == {429}


async def test_the_last_admin_cannot_be_revoked(app: FastAPI, redis: Redis) -> None:
    root = await add_operator(redis, name="root", role=Role.ADMIN, now=T0)
    await add_operator(redis, name="ana", role=Role.OPERATOR, now=T0)
    async with client_at(app, "192.0.2.1", root) as admin:
        created = await admin.post(f"{API}/operators", json={"name": "deputy", "role": "admin"})
        assert created.status_code == 201
        assert (await admin.delete(f"{API}/operators/deputy")).status_code == 204
        refused = await admin.delete(f"{API}/operators/root")
        assert refused.status_code == 409
        assert "last active admin" in refused.json()["detail"]
        assert (await admin.delete(f"{API}/operators/ana")).status_code == 204
        listed = {o["name"]: o["revoked_at"] for o in (await admin.get(f"{API}/operators")).json()}
    assert listed["root"] is None and listed["deputy"] is not None


async def test_two_admins_revoking_each_other_at_once_leave_one(
        app: FastAPI, redis: Redis) -> None:
    tokens = {name: await add_operator(redis, name=name, role=Role.ADMIN, now=T0)
              for name in ("amadou", "binta")}
    async with client_at(app, "192.0.2.2", tokens["amadou"]) as amadou, \
            client_at(app, "192.0.2.3", tokens["binta"]) as binta:
        answers = await asyncio.gather(amadou.delete(f"{API}/operators/binta"),
                                       binta.delete(f"{API}/operators/amadou"))
    assert sorted(answer.status_code for answer in answers) in ([204, 409], [204, 401])
    active = [o for o in await operators.list_operators(redis) if o.active]
    assert len(active) == 1 and active[0].role is Role.ADMIN


def test_the_cli_refuses_to_revoke_the_last_admin(
        redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    redis_server.flush()
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    get_settings.cache_clear()
    try:
        assert main(["operators", "add", "root", "--role", "admin"]) == 0
        assert main(["operators", "revoke", "root"]) == 1
    finally:
        get_settings.cache_clear()
    assert "last active admin" in capsys.readouterr().err
