"""The hop deadline (bot.channels.deadlines): one timer for all hops, each cancelled on time."""

from __future__ import annotations

import asyncio

import pytest

from bot.channels.deadlines import Deadlines


async def hop(deadlines: Deadlines, seconds: float) -> str:
    """A hop taking `seconds`: "answered", or "late" when its deadline cut it short."""
    task = deadlines.enter()
    try:
        try:
            await asyncio.sleep(seconds)
        finally:
            late = deadlines.leave(task)
    except asyncio.CancelledError:
        if late:
            return "late"
        raise
    return "answered"


async def test_only_the_hops_past_their_deadline_are_cut_short_in_time() -> None:
    deadlines = Deadlines(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    quick = [asyncio.create_task(hop(deadlines, 0.05)) for _ in range(20)]
    slow = asyncio.create_task(hop(deadlines, 5))
    await asyncio.sleep(0.1)
    later = asyncio.create_task(hop(deadlines, 5))  # due 0.1 s after `slow`
    assert await asyncio.gather(*quick) == ["answered"] * 20
    assert await slow == "late"
    assert 0.19 <= loop.time() - started < 0.28
    assert await later == "late"
    assert 0.29 <= loop.time() - started < 0.38
    for task in [*quick, slow, later]:
        assert task.cancelling() == 0  # the deadline's cancellation was withdrawn
    deadlines.close()


async def test_hops_keep_their_deadline_after_the_timer_went_idle() -> None:
    deadlines = Deadlines(0.1)
    assert await hop(deadlines, 0.01) == "answered"
    await asyncio.sleep(0.15)  # the timer fired with nothing due
    assert await hop(deadlines, 1) == "late"
    assert await hop(deadlines, 0.01) == "answered"
    deadlines.close()


async def test_a_hop_cancelled_by_the_server_is_not_taken_for_a_late_one() -> None:
    deadlines = Deadlines(0.1)
    task = asyncio.create_task(hop(deadlines, 5))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def slow_to_give_up(deadlines: Deadlines) -> str:
        """As `hop`, with a clean-up that takes its time once cancelled."""
        task = deadlines.enter()
        try:
            try:
                try:
                    await asyncio.sleep(5)
                except asyncio.CancelledError:
                    await asyncio.sleep(5)  # cleaning up, past the deadline
                    raise
            finally:
                late = deadlines.leave(task)
        except asyncio.CancelledError:
            if late:
                return "late"
            raise
        return "answered"

    # Cut short by its deadline, then cancelled by the server too: the server's wins.
    both = asyncio.create_task(slow_to_give_up(deadlines))
    await asyncio.sleep(0.15)
    both.cancel()
    with pytest.raises(asyncio.CancelledError):
        await both
    deadlines.close()
