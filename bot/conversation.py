"""The one inbound-message loop, shared by every channel and by `helpline chat`.

Per message, serialised per phone:

- one round trip when this process knows the phone's state: the turn is
  planned from it and STEP writes it, after checking in the same script that
  the message is not a retry (receipts), that no other writer holds the lease,
  the rate limit, and that the stored state is still the one planned from;
- otherwise two: BEGIN (retry check, lease, rate limit, session + profile +
  draft + receipts, and the case a typed reference points to), then the turn,
  its effects on cases and COMMIT in one pipeline. A STEP that finds the state
  changed takes the lease and returns the fresh state, standing for BEGIN.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from bot import privacy
from bot.cases import followups
from bot.cases import migrant as migrant_cases
from bot.cases.model import CaseKind, NewCase
from bot.conversation_plan import (
    InboundMessage,
    Outcome,
    Plan,
    Ttls,
    latest_input,
    plan,
    shown_again,
    typed_reference,
)
from bot.engine.keywords import is_emergency
from bot.engine.receipts import Receipts, message_digest
from bot.engine.render import Limits, Reply, fill, render
from bot.engine.session import CaseView, CreateCase
from bot.engine.spelling import spelled
from bot.engine.survey import survey_states
from bot.errors import PhoneBusy
from bot.flows.compiler import CompiledFlow
from bot.flows.model import NAV_HOME
from bot.settings import Settings
from bot.store import cases as case_store
from bot.store import creating_step, durability, keys, phone_state, sessions
from bot.store.scripts import batch, is_cluster, unknown_script
from bot.store.sessions import Begun, Commit, Loaded, PhoneKeys, PhoneState, RateLimit
from bot.types import Channel

__all__ = ["Conversation", "Handled", "InboundMessage", "Outcome"]

log = logging.getLogger(__name__)

LEASE_WAIT_SECONDS = 1.5
LEASE_POLL_FIRST = 0.002
LEASE_POLL_MAX = 0.05
LOST_LEASE_RETRIES = 3
DAY_SECONDS = 24 * 3600
RELEASE_RETRY_SECONDS = 0.25
MAX_BACKGROUND_RELEASES = 256
KNOWN_STATES = 20_000
"""Phones whose last written state this process remembers (one-round-trip steps)."""
KNOWN_LANGUAGES = 10_000
"""Phones whose language this process remembers, to say the fallback in it."""
READER_CEILING = 4
"""A phone may send `READER_CEILING` × `HELPLINE_RATE_LIMIT` messages a window in all;
`HELPLINE_RATE_LIMIT` applies to one free-text body sent again and again (a loop)."""
UNSEEN_RETRY_SECONDS = 0.25
UNSEEN_TRYING_SECONDS = 60.0
"""How long a hop cut off by its deadline keeps trying to leave its unseen mark."""
_NOTHING_STORED = PhoneState()


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Handled:
    reply: Reply
    outcome: Outcome = Outcome.ANSWERED
    newly_limited: bool = False
    """This message took the phone over the rate limit."""


class _PhoneLocks:
    """In-process FIFO locks per phone: concurrent messages of one phone queue in order.

    The Redis lease still guards against other processes; this keeps one
    process from polling Redis for a lease its own other task holds.
    """

    def __init__(self) -> None:
        self._held: dict[str, deque[asyncio.Future[None]]] = {}
        """Phones held, each with the messages waiting for it, first come first."""

    def hold(self, phone_key: str) -> _Hold:
        return _Hold(self._held, phone_key)

    def take(self, phone_key: str) -> bool:
        """Take a free phone's lock at once (no coroutine): False when it is held."""
        if phone_key in self._held:
            return False
        self._held[phone_key] = deque()
        return True

    async def wait(self, phone_key: str) -> None:
        """Wait until the phone's lock is handed over (after `take` said False)."""
        await _Hold(self._held, phone_key).__aenter__()

    def give_back(self, phone_key: str) -> None:
        """Release a lock `take` or `hold` gave: to the next message waiting, if any."""
        _Hold(self._held, phone_key)._pass_on()


class _Hold:
    """`async with` one phone's lock: taken at once when free (no lock object, no await);
    else a future in the phone's queue, given the lock by the message before it."""

    __slots__ = ("held", "phone_key")

    def __init__(self, held: dict[str, deque[asyncio.Future[None]]], phone_key: str) -> None:
        self.held = held
        self.phone_key = phone_key

    async def __aenter__(self) -> None:
        waiting = self.held.get(self.phone_key)
        if waiting is None:
            self.held[self.phone_key] = deque()
            return
        turn = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._pass_on()  # given the lock as it was cancelled: the next one's now
            raise

    async def __aexit__(self, *_: object) -> None:
        self._pass_on()

    def _pass_on(self) -> None:
        waiting = self.held[self.phone_key]
        while waiting:
            turn = waiting.popleft()
            if not turn.done():  # a waiter cancelled meanwhile is skipped
                turn.set_result(None)
                return
        del self.held[self.phone_key]


class _Bounded(OrderedDict[Any, Any]):
    """The most recently used entries, at most `size`."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def keep(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


class Conversation:
    def __init__(self, *, redis: Any, compiled: CompiledFlow, settings: Settings,
                 clock: Callable[[], datetime] = utcnow, sms_rate_limit: int = 0) -> None:
        """`sms_rate_limit`: inbound SMS a phone may send per window (0: no limit).

        The gateways pass `HELPLINE_RATE_LIMIT`; `helpline chat` has no auto-reply loops.
        """
        self.redis = redis
        self.compiled = compiled
        self.settings = settings
        self.clock = clock
        self.pii_key = privacy.pii_key(settings)
        self.sms_rate_limit = sms_rate_limit
        self._locks = _PhoneLocks()
        self._states = _Bounded(KNOWN_STATES)
        self._languages = _Bounded(KNOWN_LANGUAGES)
        self._background: set[asyncio.Task[None]] = set()
        self._replicas = durability.Replicas()
        self._cluster = is_cluster(redis)
        self._phone_keys = _Bounded(KNOWN_STATES)
        self._pseudonyms: OrderedDict[str, str] = OrderedDict()
        self._limits = {channel: Limits(channel, settings.ussd_max_chars) for channel in Channel}
        self._ttls = {channel: Ttls(session=self.session_ttl(channel),
                                    profile=settings.retention_days * DAY_SECONDS,
                                    draft=settings.draft_ttl, survey=settings.followup_ttl,
                                    survey_states=survey_states(compiled.flow))
                      for channel in Channel}

    def limits(self, channel: Channel) -> Limits:
        return self._limits[channel]

    def session_ttl(self, channel: Channel) -> int:
        if channel in (Channel.USSD, Channel.VOICE):  # a call lasts minutes, like a USSD session
            return self.settings.ussd_ttl
        return self.settings.sms_ttl

    def ttls(self, channel: Channel) -> Ttls:
        return self._ttls[channel]

    def rate_limit(self, message: InboundMessage) -> RateLimit:
        """SMS only: auto-reply loops cost money; a USSD session is dialled by hand.

        Loops send the same words again and again: a free-text body counts against
        `HELPLINE_RATE_LIMIT`. A person reading topic after topic sends menu keys (and
        the odd name or place): only the ceiling of `READER_CEILING` times it applies.
        """
        if message.channel is not Channel.SMS or self.sms_rate_limit <= 0:
            return sessions.NO_RATE_LIMIT
        body = " ".join(message.text.split()).casefold()
        typed_keys = all(ch.isdigit() or ch in "*#-" for ch in body.replace(" ", ""))
        keyed = hashlib.blake2b(body.encode(), key=self.pii_key[:64], digest_size=5)
        return RateLimit(limit=self.sms_rate_limit * READER_CEILING,
                         repeat_limit=self.sms_rate_limit,
                         body_digest="" if body and typed_keys else keyed.hexdigest())

    def pseudonym(self, phone: str) -> str:
        """The phone's HMAC pseudonym; remembered, as every hop of a session asks again."""
        known = self._pseudonyms.get(phone)
        if known is None:
            known = self._pseudonyms[phone] = privacy.pseudonym(phone, self.pii_key)
            if len(self._pseudonyms) > KNOWN_STATES:
                self._pseudonyms.popitem(last=False)  # O(1), unlike a dict's first key
        return known

    def language_hint(self, pseudonym: str) -> str:
        """The language this process last spoke with the phone (no Redis needed)."""
        language: str = self._languages.get(pseudonym, self.compiled.flow.default_language)
        return language

    async def set_language(self, phone: str, language: str) -> None:
        """Remember `language` for this phone, as the language menu would."""
        if language not in self.compiled.flow.languages:
            raise ValueError(f"language must be one of {', '.join(self.compiled.flow.languages)}")
        pseudonym = self.pseudonym(phone)
        self._states.pop(pseudonym, None)
        await phone_state.update_profile(
            self.redis,
            pseudonym=pseudonym,
            language=language,
            ttl=self.settings.retention_days * DAY_SECONDS,
        )

    async def handle(self, message: InboundMessage) -> Reply:
        return (await self.process(message)).reply

    async def process(self, message: InboundMessage) -> Handled:
        pseudonym = self.pseudonym(message.phone)
        phone_keys = self._phone_keys.get((pseudonym, message.channel))
        if phone_keys is None:
            phone_keys = PhoneKeys.of(pseudonym, message.channel, cluster=self._cluster)
            self._phone_keys.keep((pseudonym, message.channel), phone_keys)
        primed = self._replicas.prime(self.redis)
        if primed is not None:
            self._background.add(primed)
            primed.add_done_callback(self._background.discard)
        if not self._locks.take(pseudonym):  # most messages: the phone is free, no wait
            await self._locks.wait(pseudonym)
        try:
            for _ in range(LOST_LEASE_RETRIES):
                handled = await self._apply(message, phone_keys)
                if handled is not None:
                    return handled
            raise PhoneBusy("lost the phone's lease three times in a row")
        finally:
            self._locks.give_back(pseudonym)

    async def aclose(self) -> None:
        """Wait for the background lease releases still running."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _apply(self, message: InboundMessage, phone_keys: PhoneKeys) -> Handled | None:
        token = secrets.token_hex(8)
        digest = message_digest(message.message_id) if message.message_id else ""
        rate_limit = self.rate_limit(message)
        reference = typed_reference(latest_input(message))
        now = self.clock()
        reads = _NO_READS
        try:
            tried: Loaded | None = None
            wants_open_request = False
            if reference is None:
                one_trip, reads = await self._in_one_trip(message, phone_keys, token, digest,
                                                          rate_limit, now)
                if isinstance(one_trip, Handled):
                    return one_trip
                if isinstance(one_trip, _OpenRequestWanted):
                    wants_open_request = True
                else:
                    tried = one_trip
            if tried is None:
                loaded, begun = await self._begin(phone_keys, token, message.phone, reference,
                                                  digest, rate_limit, wants_open_request)
                reads = begun if begun.lookup or begun.open_known else reads
            else:
                loaded = tried
        except BaseException:
            self._release_later(phone_keys, token)  # a slow Redis may still run the script
            raise
        if loaded.outcome is Begun.ANSWERED:
            answer = Receipts.from_json(loaded.receipts).answer_for(digest)
            if answer is not None:
                text = shown_again(self.compiled, answer.text, loaded.session,
                                   self.limits(message.channel))
                return Handled(Reply(text=text, end=answer.end), Outcome.REPEATED)
            return await self._apply(replace(message, message_id=""), phone_keys)
        if loaded.outcome is Begun.RATE_LIMITED:
            return self._over_the_limit(message, phone_keys, loaded.newly_limited)
        try:
            return await self._under_lease(message, phone_keys, token, loaded.state, reads,
                                           digest, now)
        except BaseException:
            self._release_later(phone_keys, token)
            raise

    def _over_the_limit(self, message: InboundMessage, phone_keys: PhoneKeys,
                        newly: bool) -> Handled:
        """Silence, but for one notice when the limit is crossed and for emergencies."""
        if newly:
            log.warning("rate limit reached, no replies until the window passes",
                        extra={"phone": phone_keys.pseudonym, "channel": message.channel})
        language = self.language_hint(phone_keys.pseudonym)
        if is_emergency(message.text):
            reply = Reply(text=self.said("emergency_numbers", language, message.channel))
        elif newly:
            reply = Reply(text=self.said("rate_limited", language, message.channel))
        else:
            reply = Reply(text="")
        return Handled(reply, Outcome.RATE_LIMITED, newly_limited=newly)

    def said(self, name: str, language: str, channel: Channel,
             values: dict[str, str] | None = None) -> str:
        """A text of the flow on its own, filled and spelled for the channel."""
        flow = self.compiled.flow
        filled = fill(flow, flow.text(name, language), language, values or {}, {})
        return spelled(flow, language, channel, filled)

    async def _in_one_trip(
            self, message: InboundMessage, phone_keys: PhoneKeys, token: str, digest: str,
            rate_limit: RateLimit, now: datetime,
    ) -> tuple[Handled | Loaded | _OpenRequestWanted | None, _Reads]:
        """STEP from the state this process saw last (or nothing stored, for a new phone).

        Handled when done; Loaded when Redis answered for BEGIN (a retry, the rate limit,
        or the fresh state with the lease taken); None when BEGIN must be asked, and
        _OpenRequestWanted when BEGIN should read the phone's open request with it. A turn
        that asks for the phone's open request reads it first (a second command, before
        STEP); one that creates a case creates it in STEP's script (STEP_CREATE).
        """
        assumed = self._states.get(phone_keys.pseudonym, _NOTHING_STORED)
        reads = _NO_READS
        planned = self._plan(message, assumed, reads, digest, token, now)
        if planned.open_request_needed and planned.commit is not None:
            reads = await self._open_request(reads, phone_keys.pseudonym)
            planned = self._plan(message, assumed, reads, digest, token, now)
        if planned.open_request_needed:
            return _OPEN_REQUEST_WANTED, reads
        if planned.commit is None:
            return None, reads
        if planned.creates_only and self._creates_in_phone_shard(planned, phone_keys):
            return await self._step_and_create(message, phone_keys, token, digest,
                                               rate_limit, now, assumed, planned), reads
        if not planned.in_one_trip:
            return None, reads
        loaded = await sessions.step(self.redis, phone_keys, token, expected=assumed.digest(),
                                     digest=digest, rate=rate_limit,
                                     values=planned.commit)
        if loaded.outcome is Begun.WRITTEN:
            self._written(phone_keys.pseudonym, assumed.after(planned.commit, planned.decoded),
                          planned)
            return Handled(planned.reply, planned.outcome), reads
        if loaded.outcome is Begun.BUSY:
            return None, reads
        return loaded, reads

    @staticmethod
    def _creates_in_phone_shard(planned: Plan, phone_keys: PhoneKeys) -> bool:
        _, candidates = planned.creations[0]
        return all(keys.shard_of(reference) == keys.shard_of_phone(phone_keys.pseudonym)
                   for reference in candidates)

    def _creation_call(self, planned: Plan, message: InboundMessage,
                       now: datetime) -> tuple[list[str], list[str | int]]:
        creation, candidates = planned.creations[0]
        return case_store.create_case_call(
            new_case=self._new_case(creation, message, now), candidates=candidates,
            idempotency_key=creation.idempotency_key, pii_key=self.pii_key)

    async def _step_and_create(self, message: InboundMessage, phone_keys: PhoneKeys,
                               token: str, digest: str, rate_limit: RateLimit, now: datetime,
                               assumed: PhoneState, planned: Plan) -> Handled | Loaded | None:
        """STEP_CREATE: the state checked, the case created and the state written, one script."""
        commit = planned.commit
        assert commit is not None
        creation = self._creation_call(planned, message, now)
        wait = await self._replicas.wait_needed(self.redis)
        try:
            by_body = False
            while True:
                async with batch(self.redis) as pipe:
                    creating_step.queue_step_create(
                        pipe, phone_keys, token, expected=assumed.digest(), digest=digest,
                        rate=rate_limit, values=commit, creation=creation, by_body=by_body)
                    if wait:
                        pipe.wait_for_replicas(durability.REPLICA_ACKS,
                                               durability.ACK_TIMEOUT_MS)
                    results = await pipe.execute(raise_on_error=False)
                    acks = pipe.acks
                if unknown_script(results[0]) and not by_body:
                    by_body = True
                    continue
                break
            _raise_first_error(results)
            loaded, created = creating_step.step_create_result(results[0])
            if loaded.outcome is not Begun.WRITTEN:
                return None if loaded.outcome is Begun.BUSY else loaded
            durability.require_acks(acks)
        except BaseException:
            # As in _under_lease: the creation may run even if this hop is cut off.
            self._mark_unseen_later(phone_keys, [planned.creations[0][0].idempotency_key])
            raise
        final = self._final_reply(planned, [created], message.channel)
        await self._settle(phone_keys, assumed, planned, commit, final, digest,
                           message.channel)
        return Handled(final, planned.outcome)

    async def _commit_and_create(self, message: InboundMessage, phone_keys: PhoneKeys,
                                 token: str, planned: Plan, commit: Commit,
                                 now: datetime) -> tuple[list[Any], list[Any]]:
        """COMMIT_CREATE (after BEGIN): the case and the state in one script; as the
        pipeline's results: [CREATE_CASE's reply, COMMIT's]."""
        creation = self._creation_call(planned, message, now)
        wait = await self._replicas.wait_needed(self.redis)
        by_body = False
        while True:
            async with batch(self.redis) as pipe:
                creating_step.queue_commit_create(pipe, phone_keys, token, commit, creation,
                                                  by_body=by_body)
                if wait:
                    pipe.wait_for_replicas(durability.REPLICA_ACKS, durability.ACK_TIMEOUT_MS)
                results = await pipe.execute(raise_on_error=False)
                acks = pipe.acks
            if unknown_script(results[0]) and not by_body:
                by_body = True
                continue
            _raise_first_error(results[:1])
            saved, created = creating_step.commit_create_result(results[0])
            return [created, 1 if saved else 0], acks

    async def _settle(self, phone_keys: PhoneKeys, state: PhoneState, planned: Plan,
                      commit: Commit, final: Reply, digest: str, channel: Channel) -> None:
        """Remember what was written, or correct the receipts when the reply changed."""
        if final != planned.reply or planned.erase:
            # What was written is not quite what was planned: forget it, read it next time.
            self._states.pop(phone_keys.pseudonym, None)
            if final != planned.reply and digest:
                corrected = planned.receipts.answered(digest, final.text, final.end)
                await sessions.save_receipts(self.redis, phone_keys, corrected.to_json(),
                                             self.session_ttl(channel))
        else:
            self._written(phone_keys.pseudonym, state.after(commit, planned.decoded), planned)

    async def _begin(self, phone_keys: PhoneKeys, token: str, phone: str, reference: str | None,
                     digest: str, rate_limit: RateLimit,
                     open_request: bool = False) -> tuple[Loaded, _Reads]:
        """First round trip: answer a retry, or take the lease and read what the turn needs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LEASE_WAIT_SECONDS
        pause = LEASE_POLL_FIRST
        by_body = False
        while True:
            if reference is None and not open_request:
                results: list[Any] = [await sessions.begin(
                    self.redis, phone_keys, token, digest=digest, rate=rate_limit)]
            else:
                # The case a typed reference points to is read in the same round trip.
                async with batch(self.redis) as pipe:
                    queue = sessions.queue_begin_body if by_body else sessions.queue_begin
                    queue(pipe, phone_keys, token, digest=digest, rate=rate_limit)
                    if reference is not None:
                        case_store.queue_case_lookup(pipe, reference=reference, phone=phone)
                    if open_request:
                        migrant_cases.queue_open_request(pipe, pseudonym=phone_keys.pseudonym)
                    results = await pipe.execute(raise_on_error=False)
                if unknown_script(results[0]) and not by_body:
                    by_body = True
                    continue
            _raise_first_error(results)
            loaded = sessions.begin_result(results[0])
            if loaded.outcome is not Begun.BUSY:
                found = case_store.case_lookup_result(results[1]) if reference else None
                reads = _Reads(lookup=_view(found))
                if open_request:
                    reads = _open_read(reads, results[-1])
                return loaded, reads
            if loop.time() > deadline:
                raise PhoneBusy("another process holds this phone's lease")
            await asyncio.sleep(pause)
            pause = min(pause * 2, LEASE_POLL_MAX)

    async def _lookup(self, reference: str, phone: str) -> CaseView | None:
        async with batch(self.redis) as pipe:
            case_store.queue_case_lookup(pipe, reference=reference, phone=phone)
            (raw,) = await pipe.execute()
        return _view(case_store.case_lookup_result(raw))

    async def _open_request(self, reads: _Reads, pseudonym: str) -> _Reads:
        async with batch(self.redis) as pipe:
            migrant_cases.queue_open_request(pipe, pseudonym=pseudonym)
            (raw,) = await pipe.execute()
        return _open_read(reads, raw)

    def _plan(self, message: InboundMessage, state: PhoneState, reads: _Reads,
              digest: str, token: str, now: datetime) -> Plan:
        return plan(self.compiled, message, state, lookup=reads.lookup, digest=digest,
                    token=token, now=now, limits=self.limits(message.channel),
                    ttls=self.ttls(message.channel),
                    case_shard=keys.shard_of_phone(self.pseudonym(message.phone)),
                    open_request=reads.open_request, open_request_known=reads.open_known)

    async def _under_lease(self, message: InboundMessage, phone_keys: PhoneKeys, token: str,
                           state: PhoneState, reads: _Reads, digest: str,
                           now: datetime) -> Handled | None:
        """Second round trip: the turn's effects on cases and COMMIT, in one pipeline."""
        planned = self._plan(message, state, reads, digest, token, now)
        if planned.lookup_needed:
            reads = replace(reads, lookup=await self._lookup(planned.lookup_needed,
                                                             message.phone))
            planned = self._plan(message, state, reads, digest, token, now)
        if planned.open_request_needed and not reads.open_known:
            reads = await self._open_request(reads, phone_keys.pseudonym)
            planned = self._plan(message, state, reads, digest, token, now)
        commit = planned.commit
        if commit is None:
            await sessions.release(self.redis, phone_keys, token)
            self._states.keep(phone_keys.pseudonym, state)
            return Handled(planned.reply, planned.outcome)
        if planned.erase:
            # docs/spec.md §5: the phone's open cases are closed (reason `erased`), out of queue.
            await migrant_cases.erase_phone(self.redis, phone=message.phone, now=now,
                                            pii_key=self.pii_key)
        try:
            return await self._effects_and_commit(message, phone_keys, token, state, planned,
                                                  commit, digest, now)
        except BaseException:
            # Cut off (the hop's deadline) or failed once the cases were sent: the gateway
            # answers the fallback, yet a slow Redis may still create them. The phone's
            # next contact resolves this mark and shows the references (docs/spec.md §5).
            if planned.creations:
                self._mark_unseen_later(phone_keys, [creation.idempotency_key
                                                     for creation, _ in planned.creations])
            raise

    async def _effects_and_commit(self, message: InboundMessage, phone_keys: PhoneKeys,
                                  token: str, state: PhoneState, planned: Plan, commit: Commit,
                                  digest: str, now: datetime) -> Handled | None:
        unseen: list[Any] = []
        acks: list[Any] = []
        if not (planned.creations or planned.withdrawals or planned.erase or planned.unseen
                or planned.followups):
            results: list[Any] = [await sessions.commit(self.redis, phone_keys, token, commit)]
        elif planned.creates_only and self._creates_in_phone_shard(planned, phone_keys):
            results, acks = await self._commit_and_create(message, phone_keys, token, planned,
                                                          commit, now)
        else:
            # With replicas, a case is held by one before its reference is shown (WAIT).
            wait = bool(planned.creations) and await self._replicas.wait_needed(self.redis)
            async with batch(self.redis) as pipe:
                for idempotency_key in planned.unseen:
                    case_store.queue_reference_of(pipe, idempotency_key=idempotency_key,
                                                  pseudonym=phone_keys.pseudonym)
                for creation, candidates in planned.creations:
                    case_store.queue_create_case(
                        pipe,
                        new_case=self._new_case(creation, message, now),
                        candidates=candidates,
                        idempotency_key=creation.idempotency_key,
                        pii_key=self.pii_key,
                    )
                    if wait:
                        pipe.wait_for_replicas(durability.REPLICA_ACKS,
                                               durability.ACK_TIMEOUT_MS)
                for withdrawal in planned.withdrawals:
                    migrant_cases.queue_withdraw(
                        pipe, reference=withdrawal.reference, phone=message.phone, now=now
                    )
                for answered in planned.followups:  # after the effects _final_reply reads
                    followups.queue_answered(pipe, answered, channel=message.channel, now=now,
                                             ttl=self.settings.followup_ttl)
                if planned.erase:
                    sessions.queue_erase_phone(pipe, phone_keys, token)
                sessions.queue_commit(pipe, phone_keys, token, commit)
                results = await pipe.execute(raise_on_error=False)
                acks = pipe.acks
            unseen, results = results[:len(planned.unseen)], results[len(planned.unseen):]
            if unknown_script(results[-1]):
                results[-1] = await sessions.commit_by_body(self.redis, phone_keys, token,
                                                            commit)
        _raise_first_error(unseen + results)
        if not sessions.commit_saved(results[-1]):
            log.warning("lease lost during a step; retrying")
            return None
        # No replica holds a new case yet: NotReplicated makes the gateway answer its
        # fallback, and the case is shown at the phone's next contact (unseen mark).
        durability.require_acks(acks)
        final = self._final_reply(planned, results[:-1], message.channel)
        final = self._with_unseen(final, planned, unseen, message.channel)
        await self._settle(phone_keys, state, planned, commit, final, digest, message.channel)
        return Handled(final, planned.outcome)

    def _with_unseen(self, reply: Reply, planned: Plan, found: list[Any],
                     channel: Channel) -> Reply:
        """The reply, after what the phone was never told: the references of its cases."""
        references = sorted({case_store.text_of(ref) for ref in found if ref})
        if not references:
            return reply
        language = (planned.session.language if planned.session is not None
                    else self.compiled.flow.default_language)
        notice = "\n".join(self.said("unseen_reference", language, channel, {"reference": ref})
                           for ref in references)
        if not reply.text:
            return Reply(text=notice, end=reply.end)
        combined = f"{notice}\n{reply.text}"
        if self.limits(channel).fits(combined):
            return replace(reply, text=combined)
        if reply.end:
            return Reply(text=notice, end=True)
        flow = self.compiled.flow
        home = f"{NAV_HOME} {spelled(flow, language, channel, flow.text('home', language))}"
        return Reply(text=f"{notice}\n{home}")

    def _mark_unseen_later(self, phone_keys: PhoneKeys, idempotency_keys: list[str]) -> None:
        self._states.pop(phone_keys.pseudonym, None)
        task = asyncio.get_running_loop().create_task(self._mark_unseen(phone_keys,
                                                                         idempotency_keys))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _mark_unseen(self, phone_keys: PhoneKeys, idempotency_keys: list[str]) -> None:
        """Retried while Redis fails: the mark must outlive the stale step it is about."""
        loop = asyncio.get_running_loop()
        until = loop.time() + UNSEEN_TRYING_SECONDS
        while True:
            try:
                await sessions.mark_unseen(self.redis, phone_keys, idempotency_keys,
                                           self.settings.draft_ttl)
                return
            except (RedisError, OSError, TimeoutError):
                if loop.time() > until:
                    log.warning("could not mark a reference unseen",
                                extra={"phone": phone_keys.pseudonym})
                    return
                await asyncio.sleep(UNSEEN_RETRY_SECONDS)

    def _written(self, pseudonym: str, state: PhoneState, planned: Plan) -> None:
        self._states.keep(pseudonym, state)
        if planned.language is None:
            return
        if planned.language == self.compiled.flow.default_language:
            self._languages.pop(pseudonym, None)
        else:
            self._languages.keep(pseudonym, planned.language)

    def _final_reply(self, planned: Plan, effect_results: list[Any], channel: Channel) -> Reply:
        """The reply once effects are done: the real reference, or a refused withdrawal."""
        reply, session = planned.reply, planned.session
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
                reply = render(self.compiled.flow, session, self.limits(channel))
        if planned.withdrawals and not migrant_cases.withdraw_result(effect_results[index]):
            language = session.language if session else self.compiled.flow.default_language
            reply = Reply(text=self.said("withdraw_refused", language, channel), end=reply.end)
        return reply

    def _new_case(self, effect: CreateCase, message: InboundMessage, now: datetime) -> NewCase:
        return NewCase(
            kind=CaseKind(effect.kind),
            phone=message.phone,
            language=effect.language,
            channel=str(message.channel),
            answers=dict(effect.answers),
            consent_given_at=datetime.fromisoformat(effect.consent_at)
            if effect.consent_at else None,
            consent_text_version=effect.text_version if effect.consent_at else None,
            created_at=now,
            related=effect.related or None,
        )

    def _release_later(self, phone_keys: PhoneKeys, token: str) -> None:
        """Give the lease back without making a failing request wait for it (it expires anyway)."""
        self._states.pop(phone_keys.pseudonym, None)
        if len(self._background) >= MAX_BACKGROUND_RELEASES:
            return
        task = asyncio.get_running_loop().create_task(self._release_quietly(phone_keys, token))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _release_quietly(self, phone_keys: PhoneKeys, token: str) -> None:
        """Retried while Redis fails: a hung server runs the stale script when it wakes."""
        loop = asyncio.get_running_loop()
        until = loop.time() + sessions.LEASE_MS / 1000
        while loop.time() < until:
            try:
                await sessions.release(self.redis, phone_keys, token)
                return
            except (RedisError, OSError, TimeoutError):
                await asyncio.sleep(RELEASE_RETRY_SECONDS)


@dataclass(frozen=True)
class _Reads:
    """What BEGIN read besides the phone's state, for the turn to plan from."""

    lookup: CaseView | None = None
    """The case a typed reference points to."""
    open_request: CaseView | None = None
    open_known: bool = False
    """`open_request` was read (None then means: no return request open)."""


_NO_READS = _Reads()


class _OpenRequestWanted:
    """The turn asks for the phone's open return request: read it with BEGIN."""


_OPEN_REQUEST_WANTED = _OpenRequestWanted()


def _open_read(reads: _Reads, raw: Any) -> _Reads:
    if isinstance(raw, Exception):
        raise raw
    found = migrant_cases.open_request_result(raw)
    view = None if found is None else CaseView(
        reference=found[0], kind=str(CaseKind.RETURN_REQUEST), status=str(found[1]),
        is_callers=True,
        can_withdraw=migrant_cases.may_withdraw(CaseKind.RETURN_REQUEST, found[1]))
    return replace(reads, open_request=view, open_known=True)


def _raise_first_error(results: list[Any]) -> None:
    for result in results:
        if isinstance(result, Exception):
            raise result


def _view(lookup: case_store.CaseLookup | None) -> CaseView | None:
    if lookup is None:
        return None
    return CaseView(
        reference=lookup.reference,
        kind=str(lookup.kind),
        status=str(lookup.status),
        is_callers=lookup.is_callers,
        can_withdraw=migrant_cases.may_withdraw(lookup.kind, lookup.status),
    )
