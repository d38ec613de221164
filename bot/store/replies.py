"""Typed replies of the asyncio redis-py client."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def reply(command: Awaitable[T]) -> T:
    """The reply of one command of the asyncio client.

    redis-py 5 typed hash, set and list commands as `Awaitable[T] | T` (the mixins
    were shared with the sync client); redis-py 8 types the asyncio client's
    commands as awaitables. Kept so that call sites read the same on both.
    """
    return await command
