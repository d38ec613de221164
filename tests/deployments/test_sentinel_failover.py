"""A planned failover mid-traffic loses no reference a migrant was shown (acceptance 3).

Return requests go through the real app (USSD hops) against a Sentinel set
(master, replica, sentinel) for ~25 s; a `SENTINEL FAILOVER` comes part-way.
Fallback screens during the switch are allowed; a reference on a screen must
exist afterwards on the new master.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from bot import privacy
from bot.cases.model import CaseKind
from bot.conversation import Conversation, InboundMessage
from bot.errors import CaseNotFound, NotReplicated
from bot.privacy import pseudonym
from bot.settings import Settings
from bot.store.cases import read_case, references_of_phone
from bot.store.connection import client_for_url, close_client
from bot.types import Channel
from tests.factories import default_flow
from tests.integration.webhooks_support import (
    REFERENCE,
    RETURN_REQUEST,
    Gateway,
    gateway_settings,
    running_app,
)
from tests.redis_server import RedisServer, SentinelSet

TRAFFIC_SECONDS = 25.0
FAILOVER_AT_SECONDS = 8.0
MIGRANTS = 4
_phones = itertools.count(1)


async def one_request(gateway: Gateway, session: str, phone: str) -> str | None:
    """A whole USSD return request: the reference shown, or None (a fallback came)."""
    text = await gateway.dial(session, phone=phone)
    for typed in ["1", *RETURN_REQUEST]:  # French, then the request
        if text.startswith("END "):
            return None
        text = await gateway.press(session, typed, phone=phone)
    found = REFERENCE.search(text)
    return found.group(1) + found.group(2) if found else None


async def migrant(gateway: Gateway, until: float, shown: list[str], tries: list[int]) -> None:
    while time.monotonic() < until:
        number = next(_phones)
        tries.append(number)
        reference = await one_request(gateway, f"ATUid_fo_{number}", f"+2237900{number:04d}")
        if reference is not None:
            shown.append(reference)


async def test_every_reference_shown_across_a_failover_exists_afterwards(
        redis_sentinel: SentinelSet, tmp_path: Path) -> None:
    redis_sentinel.flush()
    first_master = redis_sentinel.master_port()
    shown: list[str] = []
    tries: list[int] = []
    async with running_app(gateway_settings(redis_sentinel.url, tmp_path)) as gateway:
        start = time.monotonic()
        until = start + TRAFFIC_SECONDS
        traffic = [asyncio.create_task(migrant(gateway, until, shown, tries))
                   for _ in range(MIGRANTS)]
        await asyncio.sleep(FAILOVER_AT_SECONDS)
        before_failover = len(shown)
        await asyncio.to_thread(redis_sentinel.failover)
        await asyncio.gather(*traffic)
    assert redis_sentinel.master_port() != first_master, "the failover happened"
    assert before_failover >= 5 and len(shown) > before_failover, (before_failover, len(shown))
    client = client_for_url(redis_sentinel.url)
    try:
        missing = []
        for reference in shown:
            try:
                case = await read_case(client, reference)
            except CaseNotFound:
                missing.append(reference)
            else:
                assert case.kind is CaseKind.RETURN_REQUEST
    finally:
        await close_client(client)
    print(f"{len(tries)} return requests, {len(shown)} references shown, "
          f"{len(missing)} missing after the failover")
    assert missing == [], f"{len(missing)} of {len(shown)} shown references were lost"


async def test_a_case_no_replica_acknowledged_in_time_is_shown_at_the_next_contact(
        redis_sentinel: SentinelSet, tmp_path: Path) -> None:
    """WAIT times out (the replica is asleep): fallback now, the reference next time."""
    redis_sentinel.flush()
    settings = Settings(redis_url=redis_sentinel.url, data_dir=tmp_path / "var")
    redis = client_for_url(redis_sentinel.url)
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    phone, session = "+22379990001", "ATUid_asleep"
    history = ""

    async def hop(typed: str | None) -> str:
        nonlocal history
        if typed is not None:
            history = f"{history}*{typed}" if history else typed
        message = InboundMessage(Channel.USSD, phone, history, ussd_session=session,
                                 restart=typed is None)
        return (await conversation.handle(message)).text

    try:
        await hop(None)
        for typed in ["1", *RETURN_REQUEST[:-1]]:  # up to the summary
            await hop(typed)
        replica = next(s for s in redis_sentinel.servers
                       if s.port != redis_sentinel.master_port())
        asleep = asyncio.create_task(asyncio.to_thread(_sleep, replica, 2.5))
        await asyncio.sleep(0.3)
        with pytest.raises(NotReplicated):
            await hop(RETURN_REQUEST[-1])  # confirm: the case is made, no replica has it
        await asleep
        await conversation.aclose()  # the unseen mark, written once Redis answers
        (reference,) = await references_of_phone(
            redis, pseudonym(phone, privacy.pii_key(settings)))
        history, session = "", "ATUid_next"
        shown = await hop(None)
        assert f"{reference[:4]}-{reference[4:]}" in shown, shown
    finally:
        await close_client(redis)


def _sleep(server: RedisServer, seconds: float) -> None:
    client = server.client()
    try:
        client.execute_command("DEBUG", "SLEEP", seconds)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _settled(redis_sentinel: SentinelSet) -> None:
    """Each test starts with a master whose replica is linked (after an earlier failover)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        port = redis_sentinel.master_port()
        master = next(s for s in redis_sentinel.servers if s.port == port).client()
        try:
            if int(master.info("replication").get("connected_slaves", 0)) >= 1:
                return
        except Exception:
            pass
        finally:
            master.close()
        time.sleep(0.2)
    raise RuntimeError("the Sentinel set did not settle")
