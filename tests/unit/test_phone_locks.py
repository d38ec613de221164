"""The conversation's per-phone lock: one message of a phone at a time, in arrival order."""

import asyncio

import pytest

from bot.conversation.loop import PhoneLocks


async def test_messages_of_one_phone_run_one_at_a_time_in_arrival_order() -> None:
    locks = PhoneLocks()
    inside: list[int] = []
    order: list[int] = []

    async def message(number: int) -> None:
        async with locks.hold("phone"):
            inside.append(number)
            assert len(inside) == 1
            await asyncio.sleep(0)
            order.append(number)
            inside.remove(number)

    await asyncio.gather(*(message(number) for number in range(50)))
    assert order == list(range(50))
    assert locks._held == {}


async def test_other_phones_are_not_held_up() -> None:
    locks = PhoneLocks()
    async with locks.hold("a"):
        async with asyncio.timeout(1):
            async with locks.hold("b"):
                pass
    assert locks._held == {}


async def test_a_waiter_cancelled_is_skipped_and_the_queue_goes_on() -> None:
    locks = PhoneLocks()
    order: list[str] = []
    release = asyncio.Event()

    async def first() -> None:
        async with locks.hold("phone"):
            await release.wait()
            order.append("first")

    async def later(name: str) -> None:
        async with locks.hold("phone"):
            order.append(name)

    tasks = [asyncio.create_task(first()), asyncio.create_task(later("cancelled")),
             asyncio.create_task(later("third"))]
    await asyncio.sleep(0)
    tasks[1].cancel()
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == ["first", "third"]
    assert tasks[1].cancelled()
    assert locks._held == {}


async def test_a_waiter_cancelled_once_given_the_lock_hands_it_on() -> None:
    locks = PhoneLocks()
    order: list[str] = []
    holder = locks.hold("phone")
    await holder.__aenter__()

    async def later(name: str) -> None:
        async with locks.hold("phone"):
            order.append(name)

    second = asyncio.create_task(later("second"))
    third = asyncio.create_task(later("third"))
    await asyncio.sleep(0)
    await holder.__aexit__(None, None, None)  # the lock goes to `second`...
    second.cancel()  # ...cancelled before it runs: it must pass the lock on
    await asyncio.gather(second, third, return_exceptions=True)
    assert order == ["third"]
    with pytest.raises(asyncio.CancelledError):
        second.result()
    assert locks._held == {}


async def test_take_wait_give_back_keep_arrival_order_and_survive_cancellation() -> None:
    locks = PhoneLocks()
    order: list[int] = []

    async def message(number: int) -> None:
        if not locks.take("phone"):
            await locks.wait("phone")
        try:
            await asyncio.sleep(0)
            order.append(number)
        finally:
            locks.give_back("phone")

    tasks = [asyncio.create_task(message(number)) for number in range(20)]
    await asyncio.sleep(0)
    tasks[5].cancel()  # waiting: skipped, the others keep their order
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == [number for number in range(20) if number != 5]
    assert locks._held == {}
