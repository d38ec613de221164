"""The one inbound-message loop, shared by every channel and by `helpline chat`.

Per message: serialise per phone → BEGIN (a retried message is answered from
the phone's receipts; otherwise lease, rate limit, and session + profile +
draft + receipts, plus the case a typed reference points to) → the turn
(keyword or `engine.step`) → apply effects and COMMIT, in one pipeline → the
reply. Two Redis round trips per message.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from redis.exceptions import RedisError

from bot import privacy
from bot.cases import lifecycle
from bot.cases.model import CaseKind, CaseStatus, NewCase
from bot.cases.references import draw_reference, parse_reference
from bot.engine.receipts import Receipts, message_digest
from bot.engine.render import Limits, Reply, render
from bot.engine.session import (
    CaseView,
    CreateCase,
    DiscardDraft,
    Draft,
    Profile,
    SaveDraft,
    Session,
    SetLanguage,
    WithdrawCase,
)
from bot.engine.turns import Inbound, Turn, turn
from bot.engine.ussd_input import SEPARATOR, new_input
from bot.errors import InvalidReference, PhoneBusy
from bot.flows.compiler import CompiledFlow
from bot.settings import Settings
from bot.store import cases as case_store
from bot.store import profiles, sessions
from bot.store.evalsha import unknown_script
from bot.store.sessions import DELETE, KEEP, NO_EXPIRY, Begun, Commit, Loaded, PhoneKeys
from bot.types import Channel

log = logging.getLogger(__name__)

LEASE_WAIT_SECONDS = 1.5
LEASE_POLL_FIRST = 0.002
LEASE_POLL_MAX = 0.05
LOST_LEASE_RETRIES = 3
CANDIDATE_REFERENCES = 4
DAY_SECONDS = 24 * 3600
REFERENCE_DIGITS = 8
RELEASE_RETRY_SECONDS = 0.25
MAX_BACKGROUND_RELEASES = 256
KNOWN_LANGUAGES = 10_000
"""Phones whose language this process remembers, to say the fallback in it."""
_WITHDRAWABLE = frozenset(lifecycle.sources_of(CaseStatus.WITHDRAWN))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InboundMessage:
    channel: Channel
    phone: str
    text: str
    restart: bool = False
    """True on the first hop of a USSD session: start a fresh conversation."""
    message_id: str = ""
    """The gateway's id of this message: a retry with the same id gets the same reply."""
    ussd_session: str = ""
    """The gateway's USSD session id: `text` is then every input of the session so far."""


class Outcome(StrEnum):
    ANSWERED = "answered"
    REPEATED = "repeated"
    """A retried message or hop, answered as before without advancing."""
    SILENT = "silent"
    """An opted-out phone: nothing said."""
    RATE_LIMITED = "rate_limited"


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
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, phone_key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(phone_key, (asyncio.Lock(), 0))
        self._locks[phone_key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[phone_key]
            if users <= 1:
                del self._locks[phone_key]
            else:
                self._locks[phone_key] = (lock, users - 1)


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
        self._languages: OrderedDict[str, str] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()

    def limits(self, channel: Channel) -> Limits:
        return Limits(channel, self.settings.ussd_max_chars)

    def session_ttl(self, channel: Channel) -> int:
        return self.settings.ussd_ttl if channel is Channel.USSD else self.settings.sms_ttl

    def rate_limit(self, channel: Channel) -> int:
        """SMS only: auto-reply loops cost money; a USSD session is dialled by hand."""
        return self.sms_rate_limit if channel is Channel.SMS else 0

    def pseudonym(self, phone: str) -> str:
        return privacy.pseudonym(phone, self.pii_key)

    def language_hint(self, pseudonym: str) -> str:
        """The language this process last spoke with the phone (no Redis needed)."""
        return self._languages.get(pseudonym, self.compiled.flow.default_language)

    async def set_language(self, phone: str, language: str) -> None:
        """Remember `language` for this phone, as the language menu would."""
        if language not in self.compiled.flow.languages:
            raise ValueError(f"language must be one of {', '.join(self.compiled.flow.languages)}")
        await profiles.update_profile(
            self.redis,
            pseudonym=self.pseudonym(phone),
            fields={"language": language},
            ttl=self.settings.retention_days * DAY_SECONDS,
        )

    async def handle(self, message: InboundMessage) -> Reply:
        return (await self.process(message)).reply

    async def process(self, message: InboundMessage) -> Handled:
        pseudonym = self.pseudonym(message.phone)
        phone_keys = PhoneKeys.of(pseudonym, message.channel)
        async with self._locks.hold(pseudonym):
            for _ in range(LOST_LEASE_RETRIES):
                handled = await self._apply(message, phone_keys)
                if handled is not None:
                    return handled
            raise PhoneBusy("lost the phone's lease three times in a row")

    async def aclose(self) -> None:
        """Wait for the background lease releases still running."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _apply(self, message: InboundMessage, phone_keys: PhoneKeys) -> Handled | None:
        token = secrets.token_hex(8)
        digest = message_digest(message.message_id) if message.message_id else ""
        rate_limit = self.rate_limit(message.channel)
        reference = _typed_reference(_latest_input(message))
        try:
            loaded, lookup = await self._begin(phone_keys, token, message.phone, reference,
                                               digest, rate_limit)
        except BaseException:
            self._release_later(phone_keys, token)  # a slow Redis may still run the BEGIN
            raise
        if loaded.outcome is Begun.ANSWERED:
            answer = Receipts.from_json(loaded.receipts).answer_for(digest)
            if answer is not None:
                return Handled(Reply(text=answer.text, end=answer.end), Outcome.REPEATED)
            return await self._apply(replace(message, message_id=""), phone_keys)
        if loaded.outcome is Begun.RATE_LIMITED:
            newly = loaded.count == rate_limit + 1
            if newly:
                log.warning("rate limit reached, no replies until the window passes",
                            extra={"phone": phone_keys.pseudonym, "channel": message.channel})
            return Handled(Reply(text=""), Outcome.RATE_LIMITED, newly_limited=newly)
        try:
            return await self._turn(message, phone_keys, token, loaded, lookup, digest)
        except BaseException:
            self._release_later(phone_keys, token)
            raise

    async def _begin(self, phone_keys: PhoneKeys, token: str, phone: str, reference: str | None,
                     digest: str, rate_limit: int) -> tuple[Loaded, CaseView | None]:
        """First round trip: answer a retry, or take the lease and read what the turn needs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LEASE_WAIT_SECONDS
        pause = LEASE_POLL_FIRST
        by_body = False
        while True:
            if reference is None:
                results: list[Any] = [await sessions.begin(
                    self.redis, phone_keys, token, digest=digest, rate_limit=rate_limit)]
            else:
                # The case a typed reference points to is read in the same round trip.
                async with self.redis.pipeline(transaction=False) as pipe:
                    queue = sessions.queue_begin_body if by_body else sessions.queue_begin
                    queue(pipe, phone_keys, token, digest=digest, rate_limit=rate_limit)
                    case_store.queue_case_lookup(pipe, reference=reference, phone=phone)
                    results = await pipe.execute(raise_on_error=False)
                if unknown_script(results[0]) and not by_body:
                    by_body = True
                    continue
            _raise_first_error(results)
            loaded = sessions.begin_result(results[0])
            if loaded.outcome is not Begun.BUSY:
                found = case_store.case_lookup_result(results[1]) if reference else None
                return loaded, _view(found)
            if loop.time() > deadline:
                raise PhoneBusy("another process holds this phone's lease")
            await asyncio.sleep(pause)
            pause = min(pause * 2, LEASE_POLL_MAX)

    async def _lookup(self, reference: str, phone: str) -> CaseView | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            case_store.queue_case_lookup(pipe, reference=reference, phone=phone)
            (raw,) = await pipe.execute()
        return _view(case_store.case_lookup_result(raw))

    async def _turn(self, message: InboundMessage, phone_keys: PhoneKeys, token: str,
                    loaded: Loaded, lookup: CaseView | None, digest: str) -> Handled | None:
        now = self.clock()
        profile = Profile.from_json(loaded.profile) if loaded.profile else None
        session = Session.from_json(loaded.session) if loaded.session else None
        stored = receipts = Receipts.from_json(loaded.receipts)
        text, restart = message.text, message.restart
        if message.ussd_session:
            hop = new_input(seen_session=receipts.ussd_session, applied=receipts.ussd_applied,
                            session_id=message.ussd_session, history=message.text)
            last = receipts.last
            if hop.replay and last is not None:
                await sessions.release(self.redis, phone_keys, token)
                return Handled(Reply(text=last.text, end=last.end), Outcome.REPEATED)
            text, restart = hop.text, hop.restart or hop.replay
            receipts = replace(receipts, ussd_session=message.ussd_session,
                               ussd_applied=message.text)
            typed = _typed_reference(text)
            if typed and (lookup is None or lookup.reference != typed):
                lookup = await self._lookup(typed, message.phone)
        inbound = Inbound(
            channel=message.channel,
            text=text,
            session=session,
            profile=profile,
            draft=Draft.from_json(loaded.draft) if loaded.draft else None,
            receipts=receipts,
            lookups={lookup.reference: lookup} if lookup else {},
            new_id=token,
            restart=restart,
        )
        limits = self.limits(message.channel)
        decided = turn(self.compiled, inbound, now, limits)
        handled = await self._carry_out(decided, message, phone_keys, token, profile, receipts,
                                        stored, digest, now, limits)
        if handled is not None and decided.session is not None:
            self._remember_language(phone_keys.pseudonym, decided.session.language)
        return handled

    async def _carry_out(self, decided: Turn, message: InboundMessage, phone_keys: PhoneKeys,
                         token: str, profile: Profile | None, receipts: Receipts,
                         stored: Receipts, digest: str, now: datetime,
                         limits: Limits) -> Handled | None:
        """Second round trip: the turn's effects and the commit, in one pipeline.

        `stored` are the receipts as loaded, `receipts` as this message updated them.
        """
        if decided.erase:
            await case_store.erase_phone_data(self.redis, phone=message.phone,
                                              actor=case_store.MIGRANT, now=now,
                                              pii_key=self.pii_key)
            receipts = Receipts(ussd_session=receipts.ussd_session,
                                ussd_applied=receipts.ussd_applied)
        session = decided.session
        reply = decided.reply
        new_profile = decided.profile or profile
        draft_json = KEEP
        for effect in decided.effects:
            match effect:
                case SetLanguage(language=language):
                    new_profile = replace(new_profile or Profile(), language=language)
                case SaveDraft(draft=saved):
                    draft_json = saved.to_json()
                case DiscardDraft():
                    draft_json = DELETE
        creations = [(effect, [draw_reference() for _ in range(CANDIDATE_REFERENCES)])
                     for effect in decided.effects if isinstance(effect, CreateCase)]
        withdrawals = [effect for effect in decided.effects if isinstance(effect, WithdrawCase)]
        created = [candidates[0] for _, candidates in creations]
        if session is not None and created:
            session.vars["reference"] = created[0]
            reply = render(self.compiled.flow, session, limits)
        if new_profile is None and session is not None and not decided.erase:
            new_profile = Profile(language=session.language)
        answered = receipts.answered(digest, reply.text, reply.end) if digest else receipts
        answered = replace(answered, pending=decided.pending)
        commit = self._commit(decided, session, reply, profile, new_profile, draft_json,
                              receipts_json=KEEP if answered == stored else answered.to_json(),
                              channel=message.channel)
        if not (creations or withdrawals or decided.erase):
            results: list[Any] = [await sessions.commit(self.redis, phone_keys, token, commit)]
        else:
            # Effects on cases ride in the same round trip as the commit.
            async with self.redis.pipeline(transaction=False) as pipe:
                for creation, candidates in creations:
                    case_store.queue_create_case(
                        pipe,
                        new_case=self._new_case(creation, message, now),
                        candidates=candidates,
                        idempotency_key=creation.idempotency_key,
                        pii_key=self.pii_key,
                    )
                for withdrawal in withdrawals:
                    case_store.queue_withdraw_by_migrant(
                        pipe, reference=withdrawal.reference, phone=message.phone, now=now
                    )
                if decided.erase:
                    sessions.queue_erase_phone(pipe, phone_keys, token)
                sessions.queue_commit(pipe, phone_keys, token, commit)
                results = await pipe.execute(raise_on_error=False)
            if unknown_script(results[-1]):
                results[-1] = await sessions.commit_by_body(self.redis, phone_keys, token,
                                                            commit)
        _raise_first_error(results)
        if not sessions.commit_saved(results[-1]):
            log.warning("lease lost during a step; retrying")
            return None
        final = self._final_reply(reply, session, results[:len(results) - 1], created,
                                  len(withdrawals), limits)
        if final != reply and digest:
            corrected = replace(receipts.answered(digest, final.text, final.end),
                                pending=decided.pending)
            await sessions.save_receipts(self.redis, phone_keys, corrected.to_json(),
                                         self.session_ttl(message.channel))
        outcome = Outcome.SILENT if decided.silent else Outcome.ANSWERED
        return Handled(final, outcome)

    def _commit(self, decided: Turn, session: Session | None, reply: Reply,
                profile: Profile | None, new_profile: Profile | None, draft_json: str, *,
                receipts_json: str, channel: Channel) -> Commit:
        if decided.keep_session:
            session_json = KEEP
        elif session is None or reply.end:
            session_json = DELETE
        else:
            session_json = session.to_json()
        profile_json = KEEP
        profile_ttl = self.settings.retention_days * DAY_SECONDS
        if new_profile is not None and new_profile != profile and not decided.erase:
            profile_json = new_profile.to_json()
            if new_profile.opted_out:
                profile_ttl = NO_EXPIRY  # an opt-out holds until START, however long
        return Commit(
            session_json=session_json,
            session_ttl=self.session_ttl(channel),
            profile_json=profile_json,
            profile_ttl=profile_ttl,
            draft_json=KEEP if decided.erase else draft_json,
            draft_ttl=self.settings.draft_ttl,
            receipts_json=receipts_json,
            receipts_ttl=self.session_ttl(channel),
        )

    def _final_reply(self, reply: Reply, session: Session | None, effect_results: list[Any],
                     created: list[str], withdrawals: int, limits: Limits) -> Reply:
        """The reply once effects are done: the real reference, or a refused withdrawal."""
        index = 0
        if created and session is not None:
            chosen = case_store.create_case_result(effect_results[index])
            index += 1
            if chosen != created[0]:
                # Another case took the first candidate meanwhile (odds ~ cases/10^7), or
                # this draft was submitted before: show the real reference.
                log.warning("reference candidate not used")
                session.vars["reference"] = chosen
                reply = render(self.compiled.flow, session, limits)
        if withdrawals and not case_store.withdraw_result(effect_results[index]):
            language = session.language if session else self.compiled.flow.default_language
            reply = Reply(text=self.compiled.flow.text("withdraw_refused", language),
                          end=reply.end)
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
        )

    def _remember_language(self, pseudonym: str, language: str) -> None:
        if language == self.compiled.flow.default_language:
            self._languages.pop(pseudonym, None)
            return
        self._languages[pseudonym] = language
        self._languages.move_to_end(pseudonym)
        if len(self._languages) > KNOWN_LANGUAGES:
            self._languages.popitem(last=False)

    def _release_later(self, phone_keys: PhoneKeys, token: str) -> None:
        """Give the lease back without making a failing request wait for it (it expires anyway)."""
        if len(self._background) >= MAX_BACKGROUND_RELEASES:
            return
        task = asyncio.get_running_loop().create_task(self._release_quietly(phone_keys, token))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _release_quietly(self, phone_keys: PhoneKeys, token: str) -> None:
        """Retried while Redis fails: a hung server runs the stale BEGIN when it wakes."""
        loop = asyncio.get_running_loop()
        until = loop.time() + sessions.LEASE_MS / 1000
        while loop.time() < until:
            try:
                await sessions.release(self.redis, phone_keys, token)
                return
            except (RedisError, OSError, TimeoutError):
                await asyncio.sleep(RELEASE_RETRY_SECONDS)


def _raise_first_error(results: list[Any]) -> None:
    for result in results:
        if isinstance(result, Exception):
            raise result


def _latest_input(message: InboundMessage) -> str:
    """The input a message most likely brings (exact once the USSD history is known)."""
    if message.ussd_session:
        return message.text.rsplit(SEPARATOR, 1)[-1]
    return message.text


def _typed_reference(text: str) -> str | None:
    """The reference a message carries, if it is one: it is looked up with the session."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) != REFERENCE_DIGITS:
        return None
    try:
        return parse_reference(digits)
    except InvalidReference:
        return None


def _view(lookup: case_store.CaseLookup | None) -> CaseView | None:
    if lookup is None:
        return None
    return CaseView(
        reference=lookup.reference,
        kind=str(lookup.kind),
        status=str(lookup.status),
        is_callers=lookup.is_callers,
        can_withdraw=lookup.kind is CaseKind.RETURN_REQUEST and lookup.status in _WITHDRAWABLE,
    )
