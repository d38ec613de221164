"""Subscribing over USSD costs no hop more than two Redis commands (MONITOR), as
`test_commands_per_hop.py` checks for a return request: the subscription is written
(one command) beside the step's one script on its last hop only."""

from __future__ import annotations

from pathlib import Path

from bot.store import subscriptions
from tests.integration.hop_support import hop_counter
from tests.redis_server import RedisServer

# French, main menu 7 (Alerts), consent, SMS safe, Niger.
SUBSCRIBE = ["1", "7", "1", "1", "2"]


async def test_every_hop_of_a_ussd_subscription_sends_at_most_two_commands(
        single_redis: RedisServer, tmp_path: Path) -> None:
    async with hop_counter(single_redis, tmp_path) as counter:
        await counter.walk(SUBSCRIBE, "+22376300101", "ATUid_alerts")  # scripts loaded
        said, per_hop = await counter.counted_walk(SUBSCRIBE, "+22376300102", "ATUid_alerts_2")
        assert "vous recevrez nos alertes" in said[-1]
        assert await subscriptions.count(counter.redis) == 2
    assert len(per_hop) == len(SUBSCRIBE) + 1
    assert all(1 <= len(commands) <= 2 for commands in per_hop), per_hop
    # Only the hop that subscribes writes the subscription; the others, one script each.
    assert [len(commands) for commands in per_hop] == [1] * len(SUBSCRIBE) + [2], per_hop
