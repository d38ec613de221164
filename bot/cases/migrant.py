"""The case service, the migrant's side: what a migrant may do to their own cases.

Following a request, withdrawing it (a return request, before departure:
return is voluntary until then, docs/spec.md §5), finding the phone's open request
before a second one is started, and erasing everything of the phone
(`EFFACER`). The conversation's writer queues these on its own pipeline, so they
come as `queue_*` / `*_result` pairs (the open request is read with
`bot.store.cases.newest_case_of_phone`, of `WITHDRAWABLE_KIND` in
`WITHDRAWABLE_FROM`); the checks that must hold atomically run
in the store's scripts with the statuses and kinds given here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot import privacy
from bot.cases import lifecycle
from bot.cases.model import CaseKind, CaseStatus
from bot.cases.service import ERASED_ACTION, PERSONAL_FIELDS, STATUS_CHANGED, close_phone_cases
from bot.settings import get_settings
from bot.store import cases as case_store
from bot.store import erasure

MIGRANT = "migrant"
"""The actor of what the migrant does, in the audit."""

WITHDRAWABLE_KIND = CaseKind.RETURN_REQUEST
WITHDRAWABLE_FROM = tuple(lifecycle.sources_of(CaseStatus.WITHDRAWN))
"""Statuses before departure: a return request in one of them is still open."""


def may_withdraw(kind: CaseKind, status: CaseStatus) -> bool:
    """Whether the migrant may withdraw a case of theirs of this kind and status."""
    return kind is WITHDRAWABLE_KIND and status in WITHDRAWABLE_FROM


def queue_withdraw(pipe: Any, *, reference: str, phone: str, now: datetime) -> None:
    """Queue the withdrawal of the caller's own return request, if it is still open.

    Checked in the store's script against the record as it is then: the case is
    the caller's (its phone), a return request, in a status one may withdraw from.
    """
    case_store.queue_own_case_status(
        pipe, reference=reference, phone=phone, now=now, kind=WITHDRAWABLE_KIND,
        sources=WITHDRAWABLE_FROM, target=CaseStatus.WITHDRAWN, actor=MIGRANT,
        action=STATUS_CHANGED)


def withdraw_result(raw: Any) -> bool:
    """True when the queued withdrawal changed the case's status."""
    return case_store.own_status_result(raw)


async def erase_phone(redis: Redis, *, phone: str, now: datetime,
                      pii_key: bytes | None = None) -> int:
    """The migrant's erasure: close the phone's open cases (reason `erased`, so they leave
    the triage queue), then erase the personal fields of all its cases; how many were."""
    key = pii_key if pii_key is not None else privacy.pii_key(get_settings())
    pseudonym = privacy.pseudonym(phone, key)
    await close_phone_cases(redis, pseudonym=pseudonym, actor=MIGRANT, now=now)
    return await erasure.erase_phone_data(redis, phone=phone, actor=MIGRANT, now=now,
                                             personal=PERSONAL_FIELDS, action=ERASED_ACTION,
                                             pii_key=key)
