"""Wrong tokens are throttled per client (docs/spec.md §7): 429 with `Retry-After`.

A client (its address, as uvicorn sees it: behind a proxy, uvicorn trusts
`X-Forwarded-For` from the addresses in `FORWARDED_ALLOW_IPS`) may present at
most `HELPLINE_AUTH_FAILURE_LIMIT` wrong tokens in `WINDOW_SECONDS`; past that, every
authenticated request from it is refused, right tokens too, until the window
ends, so a token cannot be guessed at any useful rate. The counter is in Redis:
every web process sees the same count.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fastapi import HTTPException, Request, status
from redis.asyncio import Redis

from bot.store import keys
from bot.store.counters import count_in_window

WINDOW_SECONDS = 15 * 60
_CLIENT_DIGEST_BYTES = 12


def client_key(request: Request) -> str:
    """A digest of the client's address: the counter's key names no address."""
    host = request.client.host if request.client else "unknown"
    return hashlib.blake2b(host.encode(), digest_size=_CLIENT_DIGEST_BYTES).hexdigest()


@dataclass(frozen=True)
class Throttle:
    redis: Redis
    client: str
    limit: int

    async def refuse_if_blocked(self) -> None:
        """429 while this client is over the limit."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.auth_failures(self.client))
            pipe.ttl(keys.auth_failures(self.client))
            failures, ttl = await pipe.execute()
        if failures is not None and int(failures) >= self.limit:
            raise too_many(int(ttl) if int(ttl) > 0 else WINDOW_SECONDS)

    async def count_failure(self) -> None:
        """One more wrong token; the window starts at the first."""
        await count_in_window(self.redis, keys.auth_failures(self.client), WINDOW_SECONDS)


def too_many(retry_after: int) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        "too many wrong tokens from this address; try again later",
        headers={"Retry-After": str(retry_after)},
    )
