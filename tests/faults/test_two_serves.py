"""Two `helpline serve` processes on one Redis, one phone hammering both (issue 9, faults).

Web processes are stateless (docs/spec.md §9): whichever process a gateway reaches,
messages from one phone are applied one at a time, none is lost, a retried
message is applied once, and a request hopping between processes makes one
case with every answer. Each test asserts on what Redis holds, not only on
status codes.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from bot import privacy
from bot.store.cases import read_case, references_of_phone
from bot.types import Channel
from tests import phone_state_support as stored
from tests.factories import default_flow
from tests.integration.webhooks_support import (
    EXPECTED_ANSWERS,
    PII_KEY,
    RETURN_REQUEST,
    Gateway,
    new_sid,
    reference_in,
    said,
    screen,
)
from tests.processes import prod_env, serve_command, wait_until_answering
from tests.redis_server import RedisServer

CONCURRENT = 100
FALLBACK_START = default_flow().flow.text("fallback", "fr").split("{")[0]


def start_serve(redis_url: str, directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    command, base = serve_command()
    directory.mkdir()
    process = subprocess.Popen(command, env=prod_env(redis_url, HELPLINE_RATE_LIMIT="1000"),
                               cwd=directory, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    return process, base


@pytest.fixture
def two_serves(redis_server: RedisServer, tmp_path: Path) -> Iterator[list[str]]:
    redis_server.flush()
    started = [start_serve(redis_server.url, tmp_path / name) for name in ("a", "b")]
    try:
        for process, base in started:
            wait_until_answering(process, base, "/readyz")
        yield [base for _, base in started]
    finally:
        for process, _ in started:
            process.send_signal(signal.SIGINT)
        for process, _ in started:
            process.wait(timeout=30)


@asynccontextmanager
async def gateways_on(bases: list[str], *, client_timeout: float) -> AsyncIterator[list[Gateway]]:
    """One gateway client per process, all for the same phone."""
    async with httpx.AsyncClient(base_url=bases[0], timeout=client_timeout) as first, \
            httpx.AsyncClient(base_url=bases[1], timeout=client_timeout) as second:
        yield [Gateway(first), Gateway(second)]


async def session_steps(redis_url: str, phone: str, channel: str) -> int:
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        session = await stored.session(redis, privacy.pseudonym(phone, PII_KEY.encode()),
                                       Channel(channel))
    finally:
        await redis.aclose()
    assert session is not None
    return session.steps


async def test_a_hundred_concurrent_sms_from_one_phone_over_two_processes_are_all_applied(
        two_serves: list[str], redis_server: RedisServer) -> None:
    async with gateways_on(two_serves, client_timeout=30) as gateways:
        await gateways[0].text("Bonjour")
        await gateways[1].text("1")
        before = await session_steps(redis_server.url, gateways[0].phone, "sms")
        responses = await asyncio.gather(*(
            gateways[number % 2].sms(f"message {number}") for number in range(CONCURRENT)))
    texts = [said(response) for response in responses]  # every one a 200 with TwiML
    assert all(texts), "a message got no answer"
    normal = [text for text in texts if not text.startswith(FALLBACK_START)]
    after = await session_steps(redis_server.url, gateways[0].phone, "sms")
    # What each phone was told is what happened: every normal answer is one applied
    # step, and a message answered with the fallback was not applied.
    assert after - before == len(normal), (after - before, len(normal))
    assert len(normal) >= CONCURRENT // 2


async def test_a_retried_message_sent_to_both_processes_at_once_is_applied_once(
        two_serves: list[str], redis_server: RedisServer) -> None:
    async with gateways_on(two_serves, client_timeout=10) as gateways:
        await gateways[0].text("Bonjour")
        await gateways[1].text("1")
        before = await session_steps(redis_server.url, gateways[0].phone, "sms")
        sid = new_sid()
        answers = await asyncio.gather(*(gateways[copy % 2].sms("2", sid=sid)
                                         for copy in range(6)))
    assert len({said(answer) for answer in answers}) == 1
    assert await session_steps(redis_server.url, gateways[0].phone, "sms") == before + 1


async def test_a_ussd_request_hopping_between_processes_makes_one_complete_case(
        two_serves: list[str], redis_server: RedisServer) -> None:
    async with gateways_on(two_serves, client_timeout=10) as gateways:
        history = ""
        screen(await gateways[0].hop("ATUid_two", history))
        for number, typed in enumerate(["1", *RETURN_REQUEST]):
            history = f"{history}*{typed}" if history else typed
            shown = screen(await gateways[(number + 1) % 2].hop("ATUid_two", history))
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        case = await read_case(redis, reference_in(shown))
        by_phone = await references_of_phone(
            redis, privacy.pseudonym(gateways[0].phone, PII_KEY.encode()))
    finally:
        await redis.aclose()
    assert case.answers == EXPECTED_ANSWERS and case.channel == "ussd"
    assert by_phone == [case.reference]
