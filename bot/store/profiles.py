"""Per-phone profile (language, opt-out) updated outside a conversation step.

The profile is a part of the phone's state value (`bot.store.phone_state`).
"""

from __future__ import annotations

from typing import Any

from bot.store import phone_state


async def is_opted_out(redis: Any, pseudonym: str) -> bool:
    """Whether the phone opted out of SMS (its profile says so, or an old-layout one)."""
    return await phone_state.opted_out(redis, pseudonym)


async def update_profile(redis: Any, *, pseudonym: str, language: str, ttl: int) -> None:
    """Set the phone's language; an opt-out stays, without expiry."""
    await phone_state.update_profile(redis, pseudonym=pseudonym, language=language, ttl=ttl)
