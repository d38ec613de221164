"""Hostile HTTP on the real app with prod settings and a real Redis (issue 9, items 1, 2, 7, 8, 10).

Each test plays what an attacker (or a broken client) sends and asserts on
what a deployer would notice: the status, the headers, the log lines.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from bot.admin.console import CONSOLE_DIR
from bot.admin.operators import Role, add_operator
from bot.app import create_app
from bot.channels.routes import SMS_PATH, STATUS_PATH, USSD_PATH
from bot.settings import Env, Settings
from tests.integration.admin_support import API, T0, RecordedJobs, seed
from tests.integration.webhooks_support import USSD_SECRET, gateway_settings
from tests.redis_server import RedisServer

WEBHOOKS = (SMS_PATH, STATUS_PATH, USSD_PATH)
PHONE_NATIONAL = "70000099"


@pytest.fixture
def prod(redis_server: RedisServer, tmp_path: Path) -> Settings:
    return gateway_settings(redis_server.url, tmp_path, env=Env.PROD)


@pytest.fixture
async def http(prod: Settings, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    """The real app as uvicorn runs it: an exception becomes a 500, not a raise in the test."""
    app = create_app(prod, case_jobs=RecordedJobs())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            yield c


@pytest.fixture
async def admin_token(redis: Redis) -> str:
    return await add_operator(redis, name="root", role=Role.ADMIN, now=T0)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", WEBHOOKS)
async def test_a_webhook_answers_other_methods_405_without_a_traceback(
        http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, method: str, path: str) -> None:
    caplog.set_level(logging.INFO)
    response = await http.request(method, path, params={"key": USSD_SECRET})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert errors_logged(caplog) == []


async def test_a_lone_surrogate_in_an_admin_body_is_422_naming_the_field_without_echo(
        http: httpx.AsyncClient, admin_token: str, redis: Redis,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    reference = await seed(redis)
    auth = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    secret = f"Awa 00223{PHONE_NATIONAL}"
    for path, body in (
        (f"{API}/cases/{reference}/notes", '{"text": "' + secret + ' \\ud800"}'),
        (f"{API}/operators", '{"name": "a\\ud800", "role": "admin", "x": "' + secret + '"}'),
        (f"{API}/cases/{reference}/messages", '{"text": "\\udfff' + secret + '"}'),
    ):
        response = await http.post(path, content=body.encode(), headers=auth)
        assert response.status_code == 422, (path, response.text)
        fields = [error["loc"][-1] for error in response.json()["detail"]]
        assert ("name" if "operators" in path else "text") in fields
        assert PHONE_NATIONAL not in response.text and "Awa" not in response.text
    assert errors_logged(caplog) == []
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert PHONE_NATIONAL not in logged


async def test_no_validation_answer_echoes_the_input(
        http: httpx.AsyncClient, admin_token: str, redis: Redis) -> None:
    reference = await seed(redis)
    auth = {"Authorization": f"Bearer {admin_token}"}
    too_long = "+22370000099 " * 400
    response = await http.post(f"{API}/cases/{reference}/notes", json={"text": too_long},
                               headers=auth)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "text"]
    assert "22370000099" not in response.text


async def test_a_chunked_body_over_64_kib_is_413(
        http: httpx.AsyncClient, admin_token: str, redis: Redis) -> None:
    reference = await seed(redis)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    response = await http.post(
        f"{API}/cases/{reference}/notes", content=chunks(),
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["detail"] == "Content Too Large"


async def test_deeply_nested_json_is_422(
        http: httpx.AsyncClient, admin_token: str, redis: Redis) -> None:
    reference = await seed(redis)
    body = b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await http.post(
        f"{API}/cases/{reference}/notes", content=body,
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


async def test_an_integer_of_5000_digits_is_422_naming_the_body(
        http: httpx.AsyncClient, admin_token: str, redis: Redis) -> None:
    reference = await seed(redis)
    body = b'{"reason": "x", "level": ' + b"9" * 5000 + b"}"
    response = await http.post(
        f"{API}/cases/{reference}/escalate", content=body,
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


async def test_every_console_file_carries_the_console_headers(http: httpx.AsyncClient) -> None:
    files = sorted(f"/admin/static/{p.name}" for p in CONSOLE_DIR.iterdir() if p.is_file())
    assert "/admin/static/main.js" in files
    for path in ("/admin/", *files):
        response = await http.get(path)
        assert response.status_code == 200, path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["x-content-type-options"] == "nosniff", path


async def test_personal_data_answers_are_not_stored_by_caches(
        http: httpx.AsyncClient, admin_token: str, redis: Redis) -> None:
    reference = await seed(redis)
    auth = {"Authorization": f"Bearer {admin_token}"}
    for method, path in (
        ("GET", f"{API}/cases/{reference}"),
        ("GET", f"{API}/cases"),
        ("GET", f"{API}/cases/{reference}/events"),
        ("GET", f"{API}/cases/export.csv"),
        ("GET", f"{API}/operators"),
        ("PATCH", f"{API}/cases/{reference}"),
    ):
        body = {"priority": "high"} if method == "PATCH" else None
        response = await http.request(method, path, headers=auth, json=body)
        assert response.status_code == 200, (path, response.text)
        assert response.headers.get("cache-control") == "no-store", path


async def test_docs_are_off_in_prod_and_the_schema_stays(http: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert (await http.get(path)).status_code == 404, path
    assert (await http.get("/openapi.json")).status_code == 200
