"""The one writer: carries out any plan's route (`bot.engine.plan.Route`) in one trip.

- NOTHING (under the lease): the lease released, the reply as planned.
- STEP: the phone's values in one script, checked either against the state the
  conversation assumed (STEP: not the lease holder yet) or against the lease
  (COMMIT); a plan that creates one case creates it in the same script
  (STEP_CREATE, COMMIT_CREATE: the phone's state is in its case shard's slot).
- EFFECTS (under the lease): the effects on cases pipelined before COMMIT.

A creation is acknowledged by a replica before its reference is shown, when
the master has replicas (WAIT after the script, on its connection). A script
the server lost is sent again by its body (`bot.store.scripts.Batch`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

from bot.cases import followups
from bot.cases import migrant as migrant_cases
from bot.cases.model import CaseKind, NewCase
from bot.conversation.alerts import apply_alerts
from bot.conversation.background import Background
from bot.engine.plan import InboundMessage, Plan, Planner, Route
from bot.engine.render import Reply, render
from bot.engine.session import CaseView, CreateCase, PhoneState, Reads
from bot.errors import PhoneBusy
from bot.flows.model import NAV_HOME
from bot.store import cases as case_store
from bot.store import durability, sessions
from bot.store.scripts import batch
from bot.store.sessions import Begun, Loaded, PhoneKeys, RateLimit
from bot.types import Channel

log = logging.getLogger(__name__)


class Hop(NamedTuple):
    """One message's turn, as the writer needs it (a tuple: made every hop; a frozen
    dataclass costs ~6k instructions more a hop)."""

    message: InboundMessage
    phone_keys: PhoneKeys
    token: str
    """The lease token of this turn."""
    digest: str
    """The message id's digest (receipts: a retry gets the same answer), '' for none."""
    rate: RateLimit
    """How the message counts against its phone's SMS rate limit."""
    now: datetime


class Written(NamedTuple):
    """A write's outcome: the reply once written, else what Redis answered instead (a
    tuple: made every hop)."""

    reply: Reply | None = None
    """The reply as written (the real reference, a refused withdrawal, the references the
    phone was never shown); None when nothing was written."""
    instead: Loaded | None = None
    """STEP only: a retry's answer, the rate limit, the fresh state (lease taken) or a
    lease held elsewhere. None with no reply: the lease was lost, nothing written."""


LEASE_LOST = Written()
LEASE_WAIT_SECONDS = 1.5
LEASE_POLL_FIRST = 0.002
LEASE_POLL_MAX = 0.05


class Writer:
    def __init__(self, redis: Any, planner: Planner, *, pii_key: bytes,
                 background: Background, followup_ttl: int) -> None:
        self.redis = redis
        self.followup_ttl = followup_ttl
        self.planner = planner
        self.pii_key = pii_key
        self.background = background
        self.replicas = durability.Replicas()

    async def write(self, planned: Plan, route: Route, hop: Hop, *, state: PhoneState,
                    leased: bool) -> Written:
        """Write `planned` along `route` (its `route`); `state`: what it was planned from;
        `leased`: the lease is ours."""
        commit, phone_keys = planned.commit, hop.phone_keys
        if commit is None:
            await sessions.release(self.redis, phone_keys, hop.token)
            return Written(planned.reply)
        if planned.subscribe is not None or planned.unsubscribe:
            await apply_alerts(self.redis, phone_keys.pseudonym, planned)
        try:
            if route is Route.EFFECTS:
                return await self._effects(planned, hop)
            if planned.creations:
                return await self._with_creation(planned, hop, state=state, leased=leased)
            if leased:
                saved = await sessions.commit(self.redis, phone_keys, hop.token, commit)
                return Written(planned.reply) if sessions.commit_saved(saved) else LEASE_LOST
            loaded = await sessions.step(self.redis, phone_keys, hop.token,
                                         expected=state.joined(), digest=hop.digest,
                                         rate=hop.rate, values=commit)
            if loaded.outcome is Begun.WRITTEN:
                return Written(planned.reply)
            return Written(instead=loaded)
        except BaseException:
            # Cut off (the hop's deadline) or failed once the cases were sent: the gateway
            # answers the fallback, yet a slow Redis may still create them. The phone's
            # next contact resolves this mark and shows the references (docs/spec.md §5).
            if planned.creations:
                self.background.mark_unseen(phone_keys, [creation.idempotency_key
                                                         for creation, _ in planned.creations])
            raise

    async def correct_receipts(self, planned: Plan, final: Reply, phone_keys: PhoneKeys,
                               digest: str, channel: Channel) -> None:
        """The answer kept for a retry, once the effects changed the reply."""
        corrected = planned.receipts.answered(digest, final.text, final.end)
        await sessions.save_receipts(self.redis, phone_keys, corrected.to_json(),
                                     self.planner.ttls[channel].session)

    async def _with_creation(self, planned: Plan, hop: Hop, *, state: PhoneState,
                             leased: bool) -> Written:
        """STEP_CREATE or COMMIT_CREATE: checked, created and written in one script."""
        commit = planned.commit
        assert commit is not None
        creation, candidates = planned.creations[0]
        call = case_store.create_case_call(
            new_case=_new_case(creation, hop), candidates=candidates,
            idempotency_key=creation.idempotency_key, pii_key=self.pii_key)
        wait = await self.replicas.wait_needed(self.redis)
        if leased:
            raw, acks = await sessions.run_creating(
                self.redis, sessions.commit_call(hop.phone_keys, hop.token, commit, creation=call),
                wait=wait)
            if not isinstance(raw, list):  # 0: the lease was lost; else [1, the creation's]
                return LEASE_LOST
        else:
            raw, acks = await sessions.run_creating(self.redis, sessions.step_call(
                hop.phone_keys, hop.token, expected=state.joined(), digest=hop.digest,
                rate=hop.rate, values=commit, creation=call), wait=wait)
            loaded = sessions.begin_result(raw)
            if loaded.outcome is not Begun.WRITTEN:
                return Written(instead=loaded)
        created = raw[1]
        # No replica holds the new case yet: NotReplicated makes the gateway answer its
        # fallback, and the case is shown at the phone's next contact (unseen mark).
        durability.require_acks(acks)
        return Written(self._final_reply(planned, [created], hop.message.channel))

    async def _effects(self, planned: Plan, hop: Hop) -> Written:
        """Under the lease: the effects on cases, then COMMIT, in one pipeline."""
        commit = planned.commit
        assert commit is not None
        message, phone_keys, token, now = hop.message, hop.phone_keys, hop.token, hop.now
        if planned.erase:
            # docs/spec.md §5: the phone's open cases are closed (reason `erased`), out of queue.
            await migrant_cases.erase_phone(self.redis, phone=message.phone, now=now,
                                            pii_key=self.pii_key)
        # With replicas, a case is held by one before its reference is shown (WAIT).
        wait = bool(planned.creations) and await self.replicas.wait_needed(self.redis)
        async with batch(self.redis) as pipe:
            for idempotency_key in planned.unseen:
                case_store.queue_reference_of(pipe, idempotency_key=idempotency_key,
                                              pseudonym=phone_keys.pseudonym)
            for creation, candidates in planned.creations:
                case_store.queue_create_case(
                    pipe, new_case=_new_case(creation, hop), candidates=candidates,
                    idempotency_key=creation.idempotency_key, pii_key=self.pii_key)
                if wait:
                    pipe.wait_for_replicas(durability.REPLICA_ACKS, durability.ACK_TIMEOUT_MS)
            for withdrawal in planned.withdrawals:
                migrant_cases.queue_withdraw(pipe, reference=withdrawal.reference,
                                             phone=message.phone, now=now)
            for answered in planned.followups:  # after the effects _final_reply reads
                followups.queue_answered(pipe, answered, channel=message.channel, now=now,
                                         ttl=self.followup_ttl)
            if planned.erase:
                sessions.queue_erase_phone(pipe, phone_keys, token)
            sessions.queue_commit(pipe, phone_keys, token, commit)
            results = await pipe.execute()
            acks = pipe.acks
        unseen, results = results[:len(planned.unseen)], results[len(planned.unseen):]
        if not sessions.commit_saved(results[-1]):
            return LEASE_LOST
        durability.require_acks(acks)
        final = self._final_reply(planned, results[:-1], message.channel)
        return Written(self._with_unseen(final, planned, unseen, message.channel))

    def _final_reply(self, planned: Plan, effect_results: list[Any], channel: Channel) -> Reply:
        """The reply once effects are done: the real reference, or a refused withdrawal."""
        reply, session = planned.reply, planned.session
        flow = self.planner.compiled.flow
        index = 0
        created = planned.created
        if created and session is not None:
            chosen = case_store.create_case_result(effect_results[index])
            index += len(created)
            if chosen != created[0]:
                # Another case took the first candidate meanwhile (odds ~ cases/10^7), or
                # this draft was submitted before: show the real reference.
                log.warning("reference candidate not used")
                session = session.copy()  # the planned one may be remembered: left as is
                session.vars["reference"] = chosen
                reply = render(flow, session, self.planner.limits[channel])
        if planned.withdrawals and not migrant_cases.withdraw_result(effect_results[index]):
            language = session.language if session else flow.default_language
            reply = Reply(text=self.planner.said("withdraw_refused", language, channel),
                          end=reply.end)
        return reply

    def _with_unseen(self, reply: Reply, planned: Plan, found: list[Any],
                     channel: Channel) -> Reply:
        """The reply, after what the phone was never told: the references of its cases."""
        references = sorted({case_store.text_of(ref) for ref in found if ref})
        if not references:
            return reply
        planner = self.planner
        flow = planner.compiled.flow
        language = (planned.session.language if planned.session is not None
                    else flow.default_language)
        notice = "\n".join(planner.said("unseen_reference", language, channel,
                                        {"reference": ref}) for ref in references)
        if not reply.text:
            return Reply(text=notice, end=reply.end)
        combined = f"{notice}\n{reply.text}"
        if planner.limits[channel].fits(combined):
            return replace(reply, text=combined)
        if reply.end:
            return Reply(text=notice, end=True)
        return Reply(text=f"{notice}\n{NAV_HOME} {planner.said('home', language, channel)}")


def _new_case(effect: CreateCase, hop: Hop) -> NewCase:
    return NewCase(
        kind=CaseKind(effect.kind),
        phone=hop.message.phone,
        language=effect.language,
        channel=str(hop.message.channel),
        answers=dict(effect.answers),
        consent_given_at=datetime.fromisoformat(effect.consent_at)
        if effect.consent_at else None,
        consent_text_version=effect.text_version if effect.consent_at else None,
        created_at=hop.now,
        related=effect.related or None,
    )


# What a turn reads from Redis besides the phone's state it assumed: the state itself under
# the phone's lease (BEGIN), and the phone's cases the plan asks for.

async def begin(redis: Any, hop: Hop) -> Loaded:
    """BEGIN: a retry answered, the rate limit counted, or the lease taken and the state
    read; polled while another writer holds the lease (PhoneBusy past the wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LEASE_WAIT_SECONDS
    pause = LEASE_POLL_FIRST
    while True:
        loaded = sessions.begin_result(await sessions.begin(
            redis, hop.phone_keys, hop.token, digest=hop.digest, rate=hop.rate))
        if loaded.outcome is not Begun.BUSY:
            return loaded
        if loop.time() > deadline:
            raise PhoneBusy("another process holds this phone's lease")
        await asyncio.sleep(pause)
        pause = min(pause * 2, LEASE_POLL_MAX)


async def read(redis: Any, planned: Plan, reads: Reads, *, phone: str, pseudonym: str) -> Reads:
    """`reads` with what `planned` asks for: the case a typed reference points to, or the
    phone's open return request."""
    if planned.lookup_needed is not None:
        found = await case_store.case_lookup(redis, reference=planned.lookup_needed, phone=phone)
        return Reads(looked_up=planned.lookup_needed, lookup=None if found is None else CaseView(
            reference=found.reference, kind=str(found.kind), status=str(found.status),
            is_callers=found.is_callers,
            can_withdraw=migrant_cases.may_withdraw(found.kind, found.status),
        ), open_request=reads.open_request, open_known=reads.open_known)
    request = await case_store.newest_case_of_phone(
        redis, pseudonym=pseudonym, kind=migrant_cases.WITHDRAWABLE_KIND,
        statuses=migrant_cases.WITHDRAWABLE_FROM)
    return Reads(looked_up=reads.looked_up, lookup=reads.lookup, open_known=True,
                 open_request=None if request is None
                 else CaseView(reference=request[0], kind=str(migrant_cases.WITHDRAWABLE_KIND),
                               status=str(request[1]), is_callers=True,
                               can_withdraw=True))  # open: withdrawable, by the read's statuses
