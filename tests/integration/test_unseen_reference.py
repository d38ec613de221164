"""A reference the migrant never saw is shown at the next contact (docs/spec.md §5, issue 9.4).

Redis is frozen (SIGSTOP) while the confirm hop's case creation is in flight:
the gateway answers the fallback within its deadline, yet Redis runs the
creation once it thaws. What the migrant was told ("service down") is then not
what happened (a case exists): the next contact must tell them its reference.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bot import privacy
from bot.store import phone_state, sessions
from bot.store.cases import read_case, references_of_phone
from tests.factories import default_flow
from tests.integration.webhooks_support import (
    ANSWERS,
    PII_KEY,
    gateway_settings,
    reference_in,
    running_app,
)
from tests.redis_server import RedisServer

FLOW = default_flow().flow
PHONE = "+22376200001"
OTHER_PHONE = "+22376200002"



async def eventually_true(check: object, seconds: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not true in time")


async def test_a_case_made_while_the_phone_got_the_fallback_is_shown_at_next_contact(
        own_redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert own_redis.process is not None
    frozen = own_redis.process.pid
    pseudonym = privacy.pseudonym(PHONE, PII_KEY.encode())
    redis: Redis = own_redis.async_client()
    async with running_app(gateway_settings(own_redis.url, tmp_path)) as gateway:
        await gateway.text("Bonjour", phone=PHONE)
        await gateway.text("1", phone=PHONE)  # French
        summary = ""
        for typed in ["2", "1", *ANSWERS]:
            summary = await gateway.text(typed, phone=PHONE)
        assert "Confirmer" in summary
        assert await references_of_phone(redis, pseudonym) == []
        # Another phone asks for a call back first, as a running service would have: the
        # scripts are loaded (a first EVALSHA would fail NOSCRIPT, its EVAL come later)
        # and the store's pool holds an open connection (a new one would wait on its
        # handshake), so the confirm hop's pipeline is written before Redis freezes.
        for typed in ["Bonjour", "1", "4", "1", "5", "1", "4"]:
            warm = await gateway.text(typed, phone=OTHER_PHONE)
        assert reference_in(warm)

        # Freeze Redis in the confirm hop just as the script creating the case is about
        # to be sent (STEP_CREATE, the state being known; COMMIT_CREATE after BEGIN).
        run_creating = sessions.run_creating

        async def freeze_then_send(*args: Any, **kwargs: Any) -> Any:
            os.kill(frozen, signal.SIGSTOP)
            return await run_creating(*args, **kwargs)

        monkeypatch.setattr(sessions, "run_creating", freeze_then_send)
        try:
            told = await gateway.text("1", phone=PHONE)  # confirm, while Redis is frozen
            await asyncio.sleep(0.5)  # the gateway has its answer; Redis is still frozen
        finally:
            os.kill(frozen, signal.SIGCONT)
            monkeypatch.setattr(sessions, "run_creating", run_creating)
        assert told == gateway_fallback(), told
        assert reference_in_or_none(told) is None  # the migrant was not given a reference

        # Redis thaws and runs the creation it had received: a case exists.
        await eventually_true(lambda: _has_cases(redis, pseudonym))
        (reference,) = await references_of_phone(redis, pseudonym)
        case = await read_case(redis, reference)
        assert case.phone == PHONE and case.answers["name"] == ANSWERS[0]
        await eventually_true(lambda: _has_unseen(redis, pseudonym))

        # The next contact tells the migrant, once.
        shown = await gateway.text("Bonjour", phone=PHONE)
        assert reference_in(shown) == reference, shown
        assert FLOW.text("unseen_reference", "fr").split("{")[0] in shown
        assert not await _has_unseen(redis, pseudonym)
        again = await gateway.text("00", phone=PHONE)
        assert reference_in_or_none(again) is None and "Aide aux migrants" in again
    await redis.aclose()


async def _has_unseen(redis: Redis, pseudonym: str) -> bool:
    return "x" in await phone_state.read_parts(redis, pseudonym)


async def _has_cases(redis: Redis, pseudonym: str) -> bool:
    return bool(await references_of_phone(redis, pseudonym))


def gateway_fallback() -> str:
    from bot.engine.render import fill
    from bot.engine.spelling import spelled
    from bot.types import Channel

    return spelled(FLOW, "fr", Channel.SMS,
                   fill(FLOW, FLOW.text("fallback", "fr"), "fr", {}, {}))


def reference_in_or_none(text: str) -> str | None:
    try:
        return reference_in(text)
    except AssertionError:
        return None
