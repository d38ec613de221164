"""A phone's conversation state in Redis: one atomic read and one atomic write a message.

The state is one compact value per phone (`bot.store.phone_state`): session and
receipts per channel, draft, profile, rate counter and marks as parts of it,
written by `bot/store/lua/phone.lua` alone; here are its turn's operations.

BEGIN (`phone.lua`'s 'step' with no state expected) answers a retried message
from the phone's receipts without further ado; otherwise it takes the phone's
lease, counts the message against the rate limit and reads session, profile,
draft and receipts (one value). COMMIT writes them back only while the lease
is still held (a writer whose lease expired cannot overwrite a newer step) and
releases it. Together they make each read-modify-write atomic in two round
trips; STEP does it in one when this process knows the state. Every key a
script touches is the phone's (the tag of its case shard: one Cluster slot).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from redis.exceptions import NoScriptError

from bot.engine.session import DELETE, KEEP, NO_EXPIRY, Commit, PhoneState
from bot.store import durability, keys, phone_state
from bot.store.phone_state import PHONE
from bot.store.scripts import Script, batch
from bot.types import Channel, statically_frozen

LEASE_MS = 3000
"""Twice the webhooks' hop deadline: a hop never holds a phone longer."""
RATE_WINDOW_SECONDS = 600

RELEASE = Script.load("release_lease")
Call = tuple[list[str], list[str | int]]
"""A script call's keys and arguments."""


@statically_frozen
class PhoneKeys:
    pseudonym: str
    channel: str
    """The channel's code in the state value (`phone_state.CHANNEL_CODES`)."""
    state: str
    lease: str
    abandoned: str = ""
    """The abandoned mark of a lease token, but the token (`keys.abandoned_lease`)."""

    @classmethod
    def of(cls, pseudonym: str, channel: str, *, cluster: bool = False) -> PhoneKeys:
        """`cluster` is not used (the keys are the same on every deployment)."""
        return cls(
            pseudonym=pseudonym,
            channel=phone_state.CHANNEL_CODES[Channel(channel)],
            state=keys.phone_state(pseudonym),
            lease=keys.lease(pseudonym),
            abandoned=keys.abandoned_lease(pseudonym, ""),
        )


class Begun(IntEnum):
    BUSY = 0
    ACQUIRED = 1
    RATE_LIMITED = 2
    ANSWERED = 3
    WRITTEN = 4
    """STEP only: the step was written in its one round trip."""


@statically_frozen
class Loaded:
    outcome: Begun
    session: str | None = None
    profile: str | None = None
    draft: str | None = None
    receipts: str | None = None
    unseen: str | None = None
    newly_limited: bool = False
    """RATE_LIMITED only: this message took the phone over the limit."""

    @property
    def acquired(self) -> bool:
        return self.outcome is Begun.ACQUIRED

    @property
    def state(self) -> PhoneState:
        return PhoneState(self.session, self.profile, self.draft, self.receipts, self.unseen)


@statically_frozen
class RateLimit:
    """How a message counts against its phone's rate limit (SMS; USSD is not limited).

    Every message counts against `limit`; a free-text body (`body_digest` set)
    that repeats the phone's previous one also counts against `repeat_limit`:
    the same words again and again put the phone over the limit for the rest of
    the window.
    """

    limit: int = 0
    repeat_limit: int = 0
    body_digest: str = ""


NO_RATE_LIMIT = RateLimit()


def step_call(phone_keys: PhoneKeys, token: str, *, expected: str = "", digest: str = "",
              rate: RateLimit = NO_RATE_LIMIT, values: Commit | None = None,
              creation: Call | None = None) -> Call:
    """`phone.lua` 'step': STEP (`values` written if the state is the `expected` one, and
    the case of `creation` created with them), or BEGIN (no `expected` state)."""
    script_keys = [phone_keys.state, phone_keys.lease, phone_keys.abandoned + token]
    limited = "" if rate.limit <= 0 else (  # one argument, '' for USSD: fewer to pack a hop
        f"{rate.limit} {RATE_WINDOW_SECONDS} {rate.repeat_limit} {rate.body_digest}")
    args: list[str | int] = ["step", token, LEASE_MS, digest, limited, phone_keys.channel,
                             expected]
    if values is not None:
        args += _commit_values(values)
    if creation is not None:
        if values is None or not expected:
            raise ValueError("a step creates a case only with the values it writes")
        script_keys += creation[0]
        args += creation[1]
    return script_keys, args


async def begin(redis: Any, phone_keys: PhoneKeys, token: str, *, digest: str = "",
                rate: RateLimit = NO_RATE_LIMIT) -> Any:
    """BEGIN on its own (no pipeline: one command is cheaper sent plainly)."""
    return await PHONE.run(redis, *step_call(phone_keys, token, digest=digest, rate=rate))


def queue_begin(pipe: Any, phone_keys: PhoneKeys, token: str, *, digest: str = "",
                rate: RateLimit = NO_RATE_LIMIT) -> None:
    PHONE.queue(pipe, *step_call(phone_keys, token, digest=digest, rate=rate))


def queue_begin_body(pipe: Any, phone_keys: PhoneKeys, token: str, *, digest: str = "",
                     rate: RateLimit = NO_RATE_LIMIT) -> None:
    """As `queue_begin`, sending the script's body (after a NOSCRIPT answer)."""
    PHONE.queue_body(pipe, *step_call(phone_keys, token, digest=digest, rate=rate))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


_WRITTEN = Loaded(Begun.WRITTEN)
_BUSY = Loaded(Begun.BUSY)


def begin_result(raw: list[Any]) -> Loaded:
    if raw[0] == Begun.WRITTEN:  # most hops: one value, not one a hop (nor an Enum look-up)
        return _WRITTEN
    outcome = Begun(int(raw[0]))
    if outcome is Begun.ANSWERED:
        return Loaded(outcome, receipts=_text(raw[1]), session=_text(raw[2]))
    if outcome is Begun.RATE_LIMITED:
        return Loaded(outcome, newly_limited=int(raw[1]) == 1)
    if outcome is Begun.BUSY:
        return _BUSY
    session, profile, draft, receipts, unseen = (_text(value) for value in raw[1:6])
    return Loaded(outcome, session=session, profile=profile, draft=draft, receipts=receipts,
                  unseen=unseen)


def _commit_values(commit: Commit) -> list[str | int]:
    # TTLs of at least 1 s (0 would mean none), the profile's 0 (none) or more; compared,
    # not max(): a builtin call costs more than the comparison, four times a hop.
    session_ttl, profile_ttl = commit.session_ttl, commit.profile_ttl
    draft_ttl, receipts_ttl = commit.draft_ttl, commit.receipts_ttl
    return [
        commit.session_json, session_ttl if session_ttl > 1 else 1,
        commit.profile_json, profile_ttl if profile_ttl > NO_EXPIRY else NO_EXPIRY,
        commit.draft_json, draft_ttl if draft_ttl > 1 else 1,
        commit.receipts_json, receipts_ttl if receipts_ttl > 1 else 1,
        DELETE if commit.unseen == DELETE else KEEP,
    ]


def commit_call(phone_keys: PhoneKeys, token: str, values: Commit,
                creation: Call | None = None) -> Call:
    """`phone.lua` 'commit': `values` written while the lease is `token`'s (and the case of
    `creation` created with them)."""
    script_keys = [phone_keys.state, phone_keys.lease]
    args: list[str | int] = ["commit", token, phone_keys.channel, *_commit_values(values)]
    if creation is not None:
        script_keys += creation[0]
        args += creation[1]
    return script_keys, args


def queue_commit(pipe: Any, phone_keys: PhoneKeys, token: str, commit: Commit) -> None:
    PHONE.queue(pipe, *commit_call(phone_keys, token, commit))


async def commit(redis: Any, phone_keys: PhoneKeys, token: str, values: Commit) -> Any:
    """COMMIT on its own, when the turn has no effect on cases to send with it."""
    return await PHONE.run(redis, *commit_call(phone_keys, token, values))


async def commit_by_body(redis: Any, phone_keys: PhoneKeys, token: str, commit: Commit) -> Any:
    """The commit alone, sending the script's body (after a NOSCRIPT answer)."""
    script_keys, args = commit_call(phone_keys, token, commit)
    return await redis.eval(PHONE.source, len(script_keys), *script_keys, *args)


async def step(redis: Any, phone_keys: PhoneKeys, token: str, *, expected: str,
               digest: str, rate: RateLimit, values: Commit) -> Loaded:
    """STEP: write `values` in one round trip if the state is still the `expected` one."""
    script_keys, args = step_call(phone_keys, token, expected=expected, digest=digest,
                                  rate=rate, values=values)
    try:  # PHONE.run's own two lines: one coroutine fewer on every hop
        raw = await redis.evalsha(PHONE.sha, len(script_keys), *script_keys, *args)
    except NoScriptError:
        raw = await redis.eval(PHONE.source, len(script_keys), *script_keys, *args)
    return begin_result(raw)


async def run_creating(redis: Any, call: Call, *, wait: bool) -> tuple[Any, list[Any]]:
    """A step or commit that creates a case (`step_call`/`commit_call` with the creation of
    `cases.create_case_call`: one script, the phone's state sits in its case shard's
    slot), and the answers of its WAIT: with `wait`, a replica must hold the case
    (`bot.store.durability`), asked on the script's connection."""
    if not wait:
        return await PHONE.run(redis, *call), []
    async with batch(redis) as pipe:
        PHONE.queue(pipe, *call)
        pipe.wait_for_replicas(durability.REPLICA_ACKS, durability.ACK_TIMEOUT_MS)
        (raw,) = await pipe.execute()
        return raw, pipe.acks


def queue_erase_phone(pipe: Any, phone_keys: PhoneKeys, token: str) -> None:
    """Queue the erasure of the phone's state (the migrant's erasure), lease kept."""
    PHONE.queue(pipe, [phone_keys.state, phone_keys.lease], ["erase", token])


async def save_receipts(redis: Any, phone_keys: PhoneKeys, receipts_json: str, ttl: int) -> None:
    """Correct the receipts after the fact (an answer changed once effects were applied)."""
    await PHONE.run(redis, [phone_keys.state],
                    ["receipts", phone_keys.channel, receipts_json, max(ttl, 1)])


async def release(redis: Any, phone_keys: PhoneKeys, token: str) -> None:
    await RELEASE.run(redis, [phone_keys.lease, keys.abandoned_lease(phone_keys.pseudonym, token)],
                      [token, LEASE_MS])


async def mark_unseen(redis: Any, phone_keys: PhoneKeys, entries: list[str], ttl: int) -> None:
    """Remember what a phone was never told (cases made while it got the fallback).

    Appended, not set: two hops may each leave one; each entry is resolved, shown and
    cleared at the phone's next contact (BEGIN and STEP read it with the session).
    """
    await phone_state.mark_unseen(redis, pseudonym=phone_keys.pseudonym, entries=entries,
                                  ttl=ttl)


def commit_saved(raw: Any) -> bool:
    return int(raw) == 1
