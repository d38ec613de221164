"""The retention purge (docs/spec.md §8): personal fields of cases that ended long enough ago.

A case's retention starts when it ends (closed or withdrawn), as the consent
screen says ("erased 180 days after the case closes"). Erasure goes through the
case service (`bot.cases.service`: which statuses end a case, which fields are
personal; the anonymous record stays, and the erasure is audited).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

from bot.cases import service as case_service
from bot.errors import CaseNotFound
from bot.jobs.deps import deps_of
from bot.store import retention

log = logging.getLogger(__name__)

PURGE_EXPIRED = "purge_expired"
RETENTION_ACTOR = "worker:retention"
PURGE_BATCH = 200


async def purge_expired(ctx: dict[str, Any]) -> int:
    """Erase the cases that ended more than `HELPLINE_RETENTION_DAYS` ago; how many were."""
    deps = deps_of(ctx)
    await case_service.index_ended_cases(deps.redis)
    now = deps.clock()
    cutoff = now - timedelta(days=deps.settings.retention_days)
    erased = 0
    while True:
        due = await retention.ended_before(deps.redis, cutoff=cutoff, count=PURGE_BATCH)
        if not due:
            break
        for reference in due:
            with contextlib.suppress(CaseNotFound):  # nothing left to erase
                erased += await case_service.erase_case(deps.redis, reference=reference,
                                                        actor=RETENTION_ACTOR, now=now)
        await retention.forget_ended(deps.redis, due)
    if erased:
        log.info("retention purge erased %d case(s)", erased)
    return erased
