"""A phone's stored state: one compact string value under the phone's hash tag.

Session and receipts per channel, draft, profile, rate counter, the repeat
mark and the unseen mark are one value of parts, each with its own logical
expiry, read and written by one script, `bot/store/lua/phone.lua` (the key's
TTL is the latest part's), and read here too. A part is
`name US expiry US payload` (expiry: epoch second in base 36, empty for
none), parts joined by RS. Names:

- `p` profile, `d` draft, `x` what the phone was never told (unseen cases),
  `n` rate counter, `b` the last free-text body's digest and its repeats;
- `s<c>` session and `r<c>` receipts per channel (`c`: CHANNEL_CODES).

A draft equal to the session that wrote it is stored as `=s<c>` (the answers
are not kept twice); when that session changes, ends or expires, the draft
takes the session's last payload (`phone.lua`: `set_part`, `load_parts`).

The lease and its abandoned marks stay keys of their own (they live seconds).
The value and the lease are under the tag of the phone's case shard
(`keys.phone_state`).
"""

from __future__ import annotations

import time
from typing import Any

from bot.engine.session import SAME_AS_SESSION
from bot.store import keys
from bot.store.scripts import Script
from bot.types import Channel

RS = "\x1e"
US = "\x1f"
CHANNEL_CODES = {Channel.USSD: "u", Channel.SMS: "m", Channel.VOICE: "v"}

PHONE = Script.load("phone")
"""Every write of a phone's state value (`bot/store/lua/phone.lua`): the conversation's
turn (`bot.store.sessions`), a case's creation (`bot.store.cases`) and the edits below."""


def parse(raw: str | bytes | None, now: float | None = None) -> dict[str, str]:
    """The live parts of a stored value (expired ones left out, a `=` draft resolved)."""
    if not raw:
        return {}
    text = raw.decode() if isinstance(raw, bytes) else raw
    clock = time.time() if now is None else now
    parts: dict[str, str] = {}
    gone: dict[str, str] = {}
    for part in text.split(RS):
        name, at, payload = part.split(US, 2)
        if at and int(at, 36) <= clock:
            gone[name] = payload
        else:
            parts[name] = payload
    draft = parts.get("d")
    if draft is not None and draft.startswith(SAME_AS_SESSION):
        source = draft[1:]
        resolved = parts.get(source, gone.get(source))
        if resolved is None:
            del parts["d"]
        else:
            parts["d"] = resolved
    return parts


def expiries(raw: str | bytes | None) -> dict[str, int | None]:
    """Each stored part's expiry (epoch second; None: never), expired ones included."""
    if not raw:
        return {}
    text = raw.decode() if isinstance(raw, bytes) else raw
    found: dict[str, int | None] = {}
    for part in text.split(RS):
        name, at, _ = part.split(US, 2)
        found[name] = int(at, 36) if at else None
    return found


def session_part(channel: Channel | str) -> str:
    return "s" + CHANNEL_CODES[Channel(channel)]


def receipts_part(channel: Channel | str) -> str:
    return "r" + CHANNEL_CODES[Channel(channel)]


async def read_parts(redis: Any, pseudonym: str) -> dict[str, str]:
    """Every live part of a phone's state (admin, worker and tests; not the hot path)."""
    return parse(await redis.get(keys.phone_state(pseudonym)))


async def opted_out(redis: Any, pseudonym: str) -> bool:
    """Whether the phone opted out (STOP)."""
    profile = parse(await redis.get(keys.phone_state(pseudonym))).get("p")
    return profile is not None and profile.endswith("!")


async def update_profile(redis: Any, *, pseudonym: str, language: str = "", ttl: int,
                         opt_out: bool = False) -> None:
    """Set the phone's language ('' keeps it) or opt it out; an opt-out stays, without
    expiry."""
    await PHONE.run(redis, [keys.phone_state(pseudonym)],
                    ["profile", language, max(ttl, 1), "1" if opt_out else "0"])


async def forget_answers(redis: Any, *, pseudonym: str) -> None:
    """Blank the answers the phone's receipts keep, on every channel (erasure)."""
    await PHONE.run(redis, [keys.phone_state(pseudonym)], ["forget"])


async def mark_unseen(redis: Any, *, pseudonym: str, entries: list[str], ttl: int) -> None:
    await PHONE.run(redis, [keys.phone_state(pseudonym)],
                    ["unseen", "".join(f" {entry}" for entry in entries), max(ttl, 1)])
