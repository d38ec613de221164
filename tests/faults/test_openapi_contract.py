"""A bounded schemathesis run over the whole `/openapi.json` (issue 9, item 9).

`helpline serve` runs with prod settings on a real Redis holding cases and an
admin; schemathesis' CLI runs every phase (examples, coverage, fuzzing and the
stateful phase) with every check, for at most `BUDGET_SECONDS`, and must find
nothing: each answer is documented, conforms to its schema, bad input is
refused and good input accepted.

Schemathesis sends wrong tokens on purpose (the `ignored_auth` check); the
wrong-token throttle is lifted for this run (it has tests of its own in
test_operator_abuse.py), or the run would mostly see 429s.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from redis.asyncio import Redis

from bot.admin import operators
from bot.admin.operators import Role
from bot.store import cases
from tests.integration.admin_support import T0, return_request
from tests.processes import prod_env, serve_command, wait_until_answering
from tests.redis_server import RedisServer

BUDGET_SECONDS = 60
CONFIG = Path(__file__).with_name("schemathesis.toml")


def seed(url: str) -> str:
    async def work() -> str:
        redis = Redis.from_url(url, decode_responses=True)
        try:
            for minute in range(5):
                await cases.create_case(redis, new_case=return_request(minutes=minute))
            return await operators.add_operator(redis, name="root", role=Role.ADMIN, now=T0)
        finally:
            await redis.aclose()

    return asyncio.run(work())


def schemathesis_cli() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    assert found, "schemathesis' CLI (st) is installed with the dev extra"
    return found


def test_schemathesis_finds_nothing_over_the_whole_openapi_document(
        redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.flush()
    token = seed(redis_server.url)
    command, base = serve_command()
    env = prod_env(redis_server.url, HELPLINE_AUTH_FAILURE_LIMIT="1000000")
    server = subprocess.Popen(command, env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_answering(server, base)
        operations = len([
            method for path in httpx.get(base + "/openapi.json").json()["paths"].values()
            for method in path
        ])
        run = subprocess.run(
            [schemathesis_cli(), "--config-file", str(CONFIG), "--no-color", "run",
             f"{base}/openapi.json", "--header", f"Authorization: Bearer {token}",
             "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
             "--max-time", str(BUDGET_SECONDS), "--max-examples", "25", "--workers", "1",
             "--generation-database", "none", "--request-timeout", "5"],
            cwd=tmp_path, capture_output=True, text=True, timeout=BUDGET_SECONDS + 120,
            check=False)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert f"Selected: {operations}/{operations}" in report, report[-3000:]
    assert re.search(rf"Tested: {operations}\b", report), report[-3000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ +{phase}", report), (phase, report[-3000:])
