"""`helpline operators add|list|revoke` and `helpline cases export` on a real Redis."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.admin.operators import operator_for_token
from bot.cli import main
from bot.settings import get_settings
from bot.store import cases
from bot.store.connection import client_for_url, close_client
from tests.integration.admin_support import return_request
from tests.redis_server import RedisServer

pytestmark = pytest.mark.deployments


@pytest.fixture
def cli_env(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    redis_server.flush()
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    get_settings.cache_clear()
    yield redis_server.url
    get_settings.cache_clear()


def run(url: str, work: object) -> object:
    async def go() -> object:
        client = client_for_url(url)
        try:
            return await work(client)  # type: ignore[operator]
        finally:
            await close_client(client)

    return asyncio.run(go())


def test_operators_add_prints_the_token_alone_on_the_last_line(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["operators", "add", "ana", "--role", "supervisor"]) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    assert len(token) >= 40 and " " not in token
    operator = run(cli_env, lambda redis: operator_for_token(redis, token))
    assert operator is not None and operator.name == "ana" and operator.role == "supervisor"

    assert main(["operators", "add", "ana", "--role", "admin"]) == 1
    assert main(["operators", "list"]) == 0
    listed = capsys.readouterr().out
    assert "ana\tsupervisor" in listed and token not in listed

    assert main(["operators", "revoke", "ana"]) == 0
    assert run(cli_env, lambda redis: operator_for_token(redis, token)) is None
    assert main(["operators", "revoke", "ana"]) == 1


def test_bad_role_is_refused(cli_env: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["operators", "add", "bob", "--role", "boss"])
    assert exit_.value.code == 2


def test_cases_export_writes_the_api_columns(cli_env: str, tmp_path: Path) -> None:
    async def seed(redis: Redis) -> list[str]:
        return [
            await cases.create_case(redis, new_case=return_request(minutes=i)) for i in range(3)
        ]

    references = run(cli_env, seed)
    out = tmp_path / "cases.csv"
    assert main(["cases", "export", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [row["reference"] for row in rows] == references
    assert rows[0]["kind"] == "return_request" and "phone" not in rows[0]
