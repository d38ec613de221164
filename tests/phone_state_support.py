"""Reading a phone's state value in tests (`bot.store.phone_state`)."""

from __future__ import annotations

import time
from typing import Any

from bot.engine.session import Profile, Session
from bot.store import keys, phone_state
from bot.types import Channel


async def parts(redis: Any, pseudonym: str) -> dict[str, str]:
    return await phone_state.read_parts(redis, pseudonym)


async def session(redis: Any, pseudonym: str, channel: Channel) -> Session | None:
    raw = (await parts(redis, pseudonym)).get(phone_state.session_part(channel))
    return None if raw is None else Session.from_json(raw)


async def profile(redis: Any, pseudonym: str) -> Profile | None:
    raw = (await parts(redis, pseudonym)).get("p")
    return None if raw is None else Profile.from_json(raw)


async def seconds_left(redis: Any, pseudonym: str, name: str) -> float | None:
    """Seconds until a part expires; None when it never does (KeyError when absent)."""
    at = phone_state.expiries(await redis.get(keys.phone_state(pseudonym)))[name]
    return None if at is None else at - time.time()


async def drop(redis: Any, pseudonym: str, *names: str) -> None:
    """Take parts out of the value (as if they had expired)."""
    key = keys.phone_state(pseudonym)
    raw = await redis.get(key)
    text = raw.decode() if isinstance(raw, bytes) else raw
    kept = [part for part in text.split(phone_state.RS)
            if part.split(phone_state.US, 1)[0] not in names]
    await redis.set(key, phone_state.RS.join(kept), keepttl=True)
