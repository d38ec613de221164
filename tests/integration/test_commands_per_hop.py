"""At most two commands sent to Redis per hop, on every hop of a return request (MONITOR).

How they are counted: tests/integration/hop_support.py (a marker before each hop splits
MONITOR's stream; commands inside scripts and the background INFO are not counted).
"""

from __future__ import annotations

from pathlib import Path

from bot.store.cases import read_case
from tests.integration.hop_support import hop_counter
from tests.integration.webhooks_support import RETURN_REQUEST, reference_in
from tests.redis_server import RedisServer


async def test_every_hop_of_a_ussd_return_request_sends_at_most_two_commands(
        single_redis: RedisServer, tmp_path: Path) -> None:
    inputs = ["1", *RETURN_REQUEST]
    async with hop_counter(single_redis, tmp_path) as counter:
        # scripts loaded (once per server), the replica count read
        await counter.walk(inputs, "+22376300001", "ATUid_count")
        said, per_hop = await counter.counted_walk(inputs, "+22376300002", "ATUid_count_2")
        reference = reference_in(said[-1])
        assert (await read_case(counter.redis, reference)).answers["name"] == "Awa Diarra"
    assert len(per_hop) == len(inputs) + 1
    assert all(1 <= len(commands) <= 2 for commands in per_hop), per_hop
    # The hop that asks for the phone's open request reads it, then steps (two); the
    # confirmation creates the case in the step's own script (one).
    assert len(per_hop[-1]) == 1, per_hop[-1]
