"""Sending broadcasts: each case shard's share of an audience, by the worker (docs/spec.md §10).

A job `send_broadcast(id, shard)` sends one share. It holds the share's lease
(renewed with every message) and claims recipients a batch at a time; for each,
it waits for a slot in the pace's bulk lane, hands the message to Twilio and
notes it, one script each. Exactly once per recipient: a recipient is claimed
once; what a sender that stopped (killed, lost its host) left claimed is handed
to the next holder as uncertain, which first asks Twilio whether it went (the
messages sent to that number since the claim) and sends only if not. The next
holder is the same job run again once its worker is gone (the queue's
redelivery), or, once the lease has run out, the round below.

`resume_broadcasts`, every minute in every worker (one job id a minute), starts
the shares of every active broadcast that nobody holds: a scheduled broadcast
once its quiet hours are over, a share whose job was lost, a share paused by
the quiet hours. Non-urgent sending stops at the start of the quiet hours
(after the batch in hand) and goes on when they end. A cancelled broadcast's
shares are closed: nothing not yet handed to Twilio goes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.jobs.alerts import Alert, deliver_alert, status_callback
from bot.jobs.deps import Deps, deps_of, job_identity, queue_of
from bot.jobs.errors import SendFailed
from bot.jobs.pace import Lane
from bot.jobs.queue import JobQueue, RetryLater
from bot.outreach.broadcasts import (
    SEND_ALERT_FALLBACK,
    SEND_BROADCAST,
    Broadcast,
    BroadcastStatus,
    may_send_now,
)
from bot.store import broadcasts as store
from bot.store import keys
from bot.store.broadcasts import Recipient

log = logging.getLogger(__name__)

RESUME_BROADCASTS = "resume_broadcasts"
ACTOR = "worker:broadcasts"
BATCH = 20
"""Recipients claimed at a time (the sends themselves go one slot of the pace each)."""
LEASE_MIN_SECONDS, LEASE_MAX_SECONDS = 5.0, 30.0
RUN_SECONDS = 10.0
"""A run sends for about this long, then hands its share to a new job (any worker's):
the shares spread over the workers, and no job stays long in one worker's hands."""
CANCEL_CHECK_SECONDS = 0.2
"""A cancelled broadcast stops within this (and the messages already handed to Twilio)."""


def lease_ms(deps: Deps) -> int:
    """How long a share's sender holds it without a sign of life: within the queue's
    redelivery time (a dead sender's job runs again only after that)."""
    seconds = min(max(deps.settings.job_redelivery_seconds, LEASE_MIN_SECONDS),
                  LEASE_MAX_SECONDS)
    return int(seconds * 1000)


@dataclass
class _Share:
    """One run of `send_broadcast` on one shard."""

    deps: Deps
    queue: JobQueue
    broadcast: Broadcast
    shard: int
    holder: str
    _cancel_checked: float = 0.0
    _cancelled: bool = False

    async def cancelled(self) -> bool:
        """Whether the share was cancelled (asked of Redis at most every
        `CANCEL_CHECK_SECONDS`): checked before each message is handed to Twilio."""
        now = time.monotonic()
        if not self._cancelled and now - self._cancel_checked >= CANCEL_CHECK_SECONDS:
            self._cancel_checked = now
            self._cancelled = await store.share_cancelled(self.deps.redis, self.broadcast.id,
                                                          self.shard)
        return self._cancelled

    async def note(self, sent: list[tuple[str, str]]) -> None:
        """Note a batch's sends ((pseudonym, outcome letter)), one round trip."""
        if not sent:
            return
        states = await store.record_sends(self.deps.redis, self.broadcast.id, self.shard, sent,
                                          holder=self.holder, lease_ms=lease_ms(self.deps))
        for (pseudonym, _), new in zip(sent, states, strict=True):
            if new == "r":  # WhatsApp refused it (63016) before the send was noted
                await self.queue.enqueue(SEND_ALERT_FALLBACK, self.broadcast.id, self.shard,
                                         pseudonym)

    async def may_go(self) -> bool:
        """Wait for the next slot of the pace's bulk lane; False once cancelled."""
        assert self.deps.pace is not None
        await self.deps.pace.wait(Lane.BULK)
        return not await self.cancelled()

    async def send(self, recipient: Recipient, *, uncertain: bool) -> str | None:
        """Send to one recipient (at most once): its outcome letter to note ('' when
        there is none: cancelled, it stays claimed), None when it must be tried again."""
        text = self.broadcast.texts.get(recipient.language)
        if text is None:
            return "k"  # a language the broadcast has no text for
        alert = Alert(recipient.pseudonym, recipient.phone, recipient.language,
                      recipient.channel, text, recipient.claimed_at,
                      status_callback(self.deps, self.broadcast.id, self.shard,
                                      recipient.pseudonym))
        try:
            letter = await deliver_alert(self.deps, alert, uncertain=uncertain,
                                         may_go=self.may_go)
        except SendFailed as failed:
            log.warning("alert %s: attempt failed (%s); tried again", self.broadcast.id,
                        failed.reason)
            return None  # left claimed: the next claim hands it back as uncertain
        return letter

    async def send_batch(self, uncertain: tuple[Recipient, ...],
                         claimed: tuple[Recipient, ...]) -> bool:
        """Send a claimed batch, then note it (one round trip: a sender that dies before
        leaves the batch uncertain, checked with Twilio); False when some must be tried
        again."""

        async def one(recipient: Recipient, was_uncertain: bool) -> str | None:
            async with self.deps.bulk_sends:
                return await self.send(recipient, uncertain=was_uncertain)

        recipients = [*uncertain, *claimed]
        letters = await asyncio.gather(*(
            one(recipient, index < len(uncertain)) for index, recipient in enumerate(recipients)))
        await self.note([(recipient.pseudonym, letter)
                         for recipient, letter in zip(recipients, letters, strict=True) if letter])
        return all(letter is not None for letter in letters)


def _quiet_ends(deps: Deps, now: datetime) -> datetime | None:
    quiet = deps.settings.quiet()
    return quiet.ends_after(now) if quiet is not None else None


async def _cancelled(deps: Deps, broadcast_id: str, shard: int, holder: str = "") -> str:
    await store.close_share(deps.redis, broadcast_id, shard, cancel=True, holder=holder)
    return "cancelled"


async def send_broadcast(ctx: dict[str, Any], broadcast_id: str, shard: int | str) -> str:
    """Send one shard's share of a broadcast (see the module)."""
    deps = deps_of(ctx)
    job_id, job_try = job_identity(ctx)
    shard = int(shard)
    found = await store.read(deps.redis, broadcast_id)
    if found is None:
        return "no such broadcast"
    if found.status is BroadcastStatus.CANCELLED:
        return await _cancelled(deps, broadcast_id, shard)
    if found.status in (BroadcastStatus.AWAITING_APPROVAL, BroadcastStatus.DONE):
        return str(found.status)
    now = deps.clock()
    if not may_send_now(urgent=found.urgent, quiet_ends=_quiet_ends(deps, now)):
        return "quiet hours"
    if found.status is BroadcastStatus.SCHEDULED:
        if found.send_at is not None and now < found.send_at:
            return "scheduled"
        await store.move(deps.redis, broadcast_id, from_statuses={BroadcastStatus.SCHEDULED},
                         to=BroadcastStatus.SENDING, actor=ACTOR, now=now, action="started")
    share = _Share(deps, queue_of(ctx), found, shard, f"{job_id}|{job_try}")
    failures = 0
    until = time.monotonic() + RUN_SECONDS
    while True:
        claimed = await store.claim(deps.redis, broadcast_id, shard, job_id=job_id,
                                    job_try=job_try, lease_ms=lease_ms(deps), wanted=BATCH)
        if claimed.status == "busy":
            return "busy"
        if claimed.status == "cancelled":
            return await _cancelled(deps, broadcast_id, shard, share.holder)
        if not claimed.uncertain and not claimed.claimed:
            break
        if await share.send_batch(claimed.uncertain, claimed.claimed):
            failures = 0
        else:
            failures += 1
            if deps.retry.gives_up(failures):
                raise RetryLater(deps.retry.delay(failures))
            await asyncio.sleep(deps.retry.delay(failures))
        current = await store.read(deps.redis, broadcast_id)
        if current is None or current.status is BroadcastStatus.CANCELLED:
            return await _cancelled(deps, broadcast_id, shard, share.holder)
        if not may_send_now(urgent=found.urgent, quiet_ends=_quiet_ends(deps, deps.clock())):
            return "quiet hours"  # the round goes on once they end
        if time.monotonic() > until:
            # Handed on: the lease let go, then the next run queued (a crash in between
            # leaves the share to the round, within a minute).
            await store.release_share(deps.redis, broadcast_id, shard, holder=share.holder)
            await share.queue.enqueue(
                SEND_BROADCAST, broadcast_id, shard,
                job_id=f"broadcast:{broadcast_id}:{shard}:{time.time_ns()}")
            return "handed on"
    if not await store.close_share(deps.redis, broadcast_id, shard, holder=share.holder):
        return "more to send"
    status = await store.shard_done(deps.redis, broadcast_id, shard, actor=ACTOR,
                                    now=deps.clock())
    return f"share sent; broadcast {status}"


async def resume_broadcasts(ctx: dict[str, Any]) -> int:
    """Start every share of an active broadcast that may send now and that nobody holds
    (see the module); the number of jobs queued."""
    deps = deps_of(ctx)
    queue = queue_of(ctx)
    now = deps.clock()
    quiet_ends = _quiet_ends(deps, now)
    queued = 0
    for broadcast_id in await store.active(deps.redis):
        found = await store.read(deps.redis, broadcast_id)
        if found is None or found.status in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED):
            if found is not None and found.status is BroadcastStatus.CANCELLED:
                for shard in keys.SHARDS:
                    await _cancelled(deps, broadcast_id, shard)
            await store.forget_active(deps.redis, broadcast_id)
            continue
        if not may_send_now(urgent=found.urgent, quiet_ends=quiet_ends):
            continue
        if found.status is BroadcastStatus.SCHEDULED and found.send_at and now < found.send_at:
            continue
        done = await store.shards_done(deps.redis, broadcast_id)
        clock_ms = time.time() * 1000  # leases are in Redis's clock, not the injected one
        for shard in keys.SHARDS:
            if shard in done:
                continue
            lease = await store.lease_of(deps.redis, broadcast_id, shard)
            if lease is not None and lease[1] > clock_ms:
                continue
            if await queue.enqueue(SEND_BROADCAST, broadcast_id, shard,
                                   job_id=f"broadcast:{broadcast_id}:{shard}:{now:%Y%m%dT%H%M}"):
                queued += 1
    return queued
