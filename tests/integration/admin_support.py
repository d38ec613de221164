"""Helpers of the admin API tests: an app on the real Redis, operators, cases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from bot.admin import operators
from bot.admin.operators import Role
from bot.app import create_app
from bot.cases.model import CaseKind, NewCase
from bot.settings import Settings
from bot.store import cases

API = "/admin/api/v1"
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
PHONE = "+22370000001"


@dataclass
class RecordedJobs:
    queued: list[tuple[str, tuple[str | int, ...]]] = field(default_factory=list)

    async def enqueue(self, job: str, *args: str | int) -> None:
        self.queued.append((job, args))

    async def close(self) -> None:
        return None


@asynccontextmanager
async def running_app(settings: Settings, jobs: RecordedJobs) -> AsyncIterator[FastAPI]:
    app = create_app(settings, case_jobs=jobs)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def client_for(app: FastAPI, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    ) as client:
        yield client


@asynccontextmanager
async def operator_client(redis: Redis, settings: Settings, *, name: str, role: Role,
                          jobs: RecordedJobs | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An app on `settings` (its jobs recorded in `jobs`) and a client signed in as `name`,
    a new operator of `role`."""
    token = await operators.add_operator(redis, name=name, role=role, now=T0)
    async with running_app(settings, RecordedJobs() if jobs is None else jobs) as app, \
            client_for(app, token) as client:
        yield client


async def tokens_for_every_role(redis: Redis) -> dict[str, str]:
    found = {
        role.value: await operators.add_operator(redis, name=f"{role}-1", role=role, now=T0)
        for role in Role
    }
    found["revoked"] = await operators.add_operator(redis, name="gone", role=Role.ADMIN, now=T0)
    await operators.revoke_operator(redis, name="gone", now=T0)
    return found


def return_request(
    *,
    phone: str = PHONE,
    minutes: int = 0,
    kind: CaseKind = CaseKind.RETURN_REQUEST,
    **answers: str,
) -> NewCase:
    return NewCase(
        kind=kind,
        phone=phone,
        language="fr",
        channel="ussd",
        answers={"name": "Awa Traoré", "city": "Agadez", "sms_safe": "yes", **answers},
        consent_given_at=T0,
        consent_text_version="consent-v1",
        created_at=T0 + timedelta(minutes=minutes),
    )


async def seed(redis: Redis, new_case: NewCase | None = None) -> str:
    return await cases.create_case(redis, new_case=new_case or return_request())
