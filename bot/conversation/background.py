"""What a hop leaves to the background: tasks that must outlive the hop that started them.

A hop cut off by its deadline, or failed, may have left its lease taken or a case
created that the phone was never told about: the lease is released and the
unseen mark left in the background, retried while Redis fails, so the failing
hop answers its fallback at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from redis.exceptions import RedisError

from bot.store import sessions
from bot.store.sessions import PhoneKeys

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.25
MAX_RELEASES = 256
"""Lease releases in flight at most (a lease expires anyway, after `sessions.LEASE_MS`)."""
UNSEEN_TRYING_SECONDS = 60.0
"""How long a hop cut off by its deadline keeps trying to leave its unseen mark."""
_FAILURES = (RedisError, OSError, TimeoutError)


class Background:
    """The background tasks of one conversation, awaited when it closes."""

    def __init__(self, redis: Any, draft_ttl: int) -> None:
        self.redis = redis
        self.draft_ttl = draft_ttl
        self.tasks: set[asyncio.Task[None]] = set()

    def keep(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        self.keep(asyncio.get_running_loop().create_task(work))

    def release(self, phone_keys: PhoneKeys, token: str) -> None:
        """Give the lease back without making a failing hop wait for it."""
        if len(self.tasks) < MAX_RELEASES:
            self.start(self._release(phone_keys, token))

    def mark_unseen(self, phone_keys: PhoneKeys, idempotency_keys: list[str]) -> None:
        """Remember cases the phone may not have been told about: its next contact
        resolves the mark and shows their references (docs/spec.md §5)."""
        self.start(self._mark_unseen(phone_keys, idempotency_keys))

    async def aclose(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _release(self, phone_keys: PhoneKeys, token: str) -> None:
        """Retried while Redis fails: a hung server runs the stale script when it wakes."""
        loop = asyncio.get_running_loop()
        until = loop.time() + sessions.LEASE_MS / 1000
        while loop.time() < until:
            try:
                await sessions.release(self.redis, phone_keys, token)
                return
            except _FAILURES:
                await asyncio.sleep(RETRY_SECONDS)

    async def _mark_unseen(self, phone_keys: PhoneKeys, idempotency_keys: list[str]) -> None:
        """Retried while Redis fails: the mark must outlive the stale step it is about."""
        loop = asyncio.get_running_loop()
        until = loop.time() + UNSEEN_TRYING_SECONDS
        while True:
            try:
                await sessions.mark_unseen(self.redis, phone_keys, idempotency_keys,
                                           self.draft_ttl)
                return
            except _FAILURES:
                if loop.time() > until:
                    log.warning("could not mark a reference unseen",
                                extra={"phone": phone_keys.pseudonym})
                    return
                await asyncio.sleep(RETRY_SECONDS)
