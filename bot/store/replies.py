"""Typed replies of the asyncio redis-py client."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def reply(command: Awaitable[T] | T) -> T:
    """The reply of one command of the asyncio client.

    redis-py 5 types hash, set and list commands as `Awaitable[T] | T` (the
    mixins are shared with the sync client); on the asyncio client they always
    return an awaitable. This keeps `mypy --strict` honest without casts.
    """
    if inspect.isawaitable(command):
        return await command
    return command
