"""Erasure: a case's personal fields, and the copies a phone's receipts keep of its answers.

Which fields are personal is the case service's rule (`bot.cases.service.PERSONAL_FIELDS`,
passed in): record fields are deleted from the record, `answers`, `journal` and
`referral_notes` name the keys beside it. The receipts (a part of the phone's state,
`bot.store.phone_state`) hold the last screens the phone was shown, so a
retried message gets the same answer; a request's summary screen repeats the
name, nationality and city. When a case is erased those texts go too: each
kept answer is blanked (a retry then gets an empty answer, not a second turn),
and the USSD session and input history are dropped (the typed answers are in
it; the next hop starts afresh).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot import privacy
from bot.errors import CaseNotFound
from bot.settings import get_settings
from bot.store import keys, phone_state
from bot.store.cases import iso, references_of_phone, text_of
from bot.store.scripts import Script, batch

ERASE_CASE = Script.load("erase_case")

# What an erasure may name beside record fields: the values kept in keys of their own.
ANSWERS = "answers"
JOURNAL = "journal"
REFERRAL_NOTES = "referral_notes"

async def forget_answers(redis: Any, *, pseudonym: str) -> None:
    """Blank what the phone's receipts repeat of its answers, on every channel."""
    await phone_state.forget_answers(redis, pseudonym=pseudonym)


def _queue_erase(pipe: Any, *, reference: str, pseudonym: str, actor: str, now: datetime,
                 personal: Sequence[str], action: str) -> None:
    shard = keys.shard_of(reference)
    beside = {ANSWERS: keys.case_answers(reference), JOURNAL: keys.case_notes(reference),
              REFERRAL_NOTES: keys.referral_notes(reference)}
    ERASE_CASE.queue(
        pipe,
        [
            keys.case(reference),
            keys.shard_audit(shard),
            keys.case_trail(reference),
            keys.cases_by_phone(shard, pseudonym),
            *(beside[name] for name in personal if name in beside),
        ],
        [actor, iso(now), action,
         *(name for name in personal if name not in (JOURNAL, REFERRAL_NOTES))],
    )


async def erase_phone_data(
    redis: Redis, *, phone: str, actor: str, now: datetime, personal: Sequence[str],
    action: str, pii_key: bytes | None = None
) -> int:
    """Erase the `personal` fields of every case of `phone` (record fields, `answers`,
    `journal`), each audited as `action`; return how many were erased."""
    pseudonym = privacy.pseudonym(
        phone, pii_key if pii_key is not None else privacy.pii_key(get_settings()))
    references = await references_of_phone(redis, pseudonym)
    if not references:
        return 0
    async with batch(redis) as pipe:
        for reference in references:
            _queue_erase(pipe, reference=reference, pseudonym=pseudonym, actor=actor, now=now,
                         personal=personal, action=action)
        results = await pipe.execute()
    await forget_answers(redis, pseudonym=pseudonym)
    return sum(int(result) for result in results)


async def erase_case(redis: Redis, *, reference: str, actor: str, now: datetime,
                     personal: Sequence[str], action: str) -> bool:
    """Erase one case's `personal` fields, audited as `action` (the rest of the record stays).

    Returns False when it was erased already; CaseNotFound when it does not exist.
    """
    pseudonym = await redis.hget(keys.case(reference), "phone_pseudonym")
    if pseudonym is None and not await redis.exists(keys.case(reference)):
        raise CaseNotFound(reference)
    async with batch(redis) as pipe:
        _queue_erase(pipe, reference=reference, pseudonym=text_of(pseudonym or ""), actor=actor,
                     now=now, personal=personal, action=action)
        (result,) = await pipe.execute()
    if pseudonym:
        await forget_answers(redis, pseudonym=text_of(pseudonym))
    return int(result) == 1
