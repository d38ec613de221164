"""Subscribing over USSD costs no hop more than two Redis commands (MONITOR), as
`test_commands_per_hop.py` checks for a return request: the subscription is written
(one command) beside the step's one script on its last hop only."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.asyncio import Redis

from bot.conversation import Conversation, InboundMessage
from bot.settings import Settings
from bot.store import subscriptions
from bot.types import Channel
from tests.factories import default_flow
from tests.integration.test_commands_per_hop import MARK, Monitor
from tests.redis_server import RedisServer

# French, main menu 7 (Alerts), consent, SMS safe, Niger.
SUBSCRIBE = ["1", "7", "1", "1", "2"]


async def test_every_hop_of_a_ussd_subscription_sends_at_most_two_commands(
        single_redis: RedisServer, tmp_path: Path) -> None:
    single_redis.flush()
    redis = Redis.from_url(single_redis.url, decode_responses=True)
    marks = Redis.from_url(single_redis.url, decode_responses=True)
    settings = Settings(redis_url=single_redis.url, data_dir=tmp_path / "var")
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    phone, session = "+22376300101", "ATUid_alerts"

    async def hop(history: str, *, first: bool = False) -> str:
        await marks.echo(MARK)
        return (await conversation.handle(InboundMessage(
            Channel.USSD, phone, history, restart=first, ussd_session=session,
            message_id=f"{session}\x1f{history}"))).text

    async def walk() -> list[str]:
        said = [await hop("", first=True)]
        for number in range(1, len(SUBSCRIBE) + 1):
            said.append(await hop("*".join(SUBSCRIBE[:number])))
        return said

    try:
        await walk()  # scripts loaded (once per server)
        phone, session = "+22376300102", "ATUid_alerts_2"
        monitor = Monitor(single_redis.port)
        await asyncio.sleep(0.1)
        said = await walk()
        await marks.echo(MARK)
        await asyncio.sleep(0.2)
        sent = monitor.commands()
        assert "vous recevrez nos alertes" in said[-1]
        assert await subscriptions.count(redis) == 2
    finally:
        await conversation.aclose()
        await redis.aclose()
        await marks.aclose()
    per_hop: list[list[str]] = []
    for command in sent:
        if command == f"echo {MARK}":
            per_hop.append([])
        elif per_hop and not command.startswith("info"):
            per_hop[-1].append(command)
    per_hop = per_hop[:-1]
    assert len(per_hop) == len(SUBSCRIBE) + 1
    assert all(1 <= len(commands) <= 2 for commands in per_hop), per_hop
    # Only the hop that subscribes writes the subscription; the others, one script each.
    assert [len(commands) for commands in per_hop] == [1] * len(SUBSCRIBE) + [2], per_hop
