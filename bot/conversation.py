"""The one inbound-message loop, shared by every channel and by `helpline chat`.

Per message: serialise per phone → load (lease + session + profile + draft,
plus the case a typed reference points to) → `engine.step` → apply effects
and save, in one pipeline → render. Two Redis round trips per message.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bot import privacy
from bot.cases import lifecycle
from bot.cases.model import CaseKind, CaseStatus, NewCase
from bot.cases.references import draw_reference, parse_reference
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
    StepContext,
    WithdrawCase,
)
from bot.engine.step import step
from bot.errors import InvalidReference, PhoneBusy
from bot.flows.compiler import CompiledFlow
from bot.settings import Settings
from bot.store import cases as case_store
from bot.store import profiles, sessions
from bot.store.sessions import DELETE, KEEP, Commit, PhoneKeys
from bot.types import Channel

log = logging.getLogger(__name__)

LEASE_WAIT_SECONDS = 1.5
LEASE_POLL_FIRST = 0.002
LEASE_POLL_MAX = 0.05
LOST_LEASE_RETRIES = 3
CANDIDATE_REFERENCES = 4
DAY_SECONDS = 24 * 3600
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
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.redis = redis
        self.compiled = compiled
        self.settings = settings
        self.clock = clock
        self.pii_key = privacy.pii_key(settings)
        self._locks = _PhoneLocks()

    def limits(self, channel: Channel) -> Limits:
        return Limits(channel, self.settings.ussd_max_chars)

    def session_ttl(self, channel: Channel) -> int:
        return self.settings.ussd_ttl if channel is Channel.USSD else self.settings.sms_ttl

    async def set_language(self, phone: str, language: str) -> None:
        """Remember `language` for this phone, as the language menu would."""
        if language not in self.compiled.flow.languages:
            raise ValueError(f"language must be one of {', '.join(self.compiled.flow.languages)}")
        await profiles.update_profile(
            self.redis,
            pseudonym=privacy.pseudonym(phone, self.pii_key),
            fields={"language": language},
            ttl=self.settings.retention_days * DAY_SECONDS,
        )

    async def handle(self, message: InboundMessage) -> Reply:
        pseudonym = privacy.pseudonym(message.phone, self.pii_key)
        async with self._locks.hold(pseudonym):
            for _ in range(LOST_LEASE_RETRIES):
                reply = await self._apply(message, PhoneKeys.of(pseudonym, message.channel))
                if reply is not None:
                    return reply
            raise PhoneBusy("lost the phone's lease three times in a row")

    async def _apply(self, message: InboundMessage, phone_keys: PhoneKeys) -> Reply | None:
        token = secrets.token_hex(8)
        reference = _typed_reference(message.text)
        loaded, lookup = await self._begin(phone_keys, token, message.phone, reference)
        try:
            return await self._step(message, phone_keys, token, loaded, lookup)
        except BaseException:
            await sessions.release(self.redis, phone_keys, token)
            raise

    async def _begin(self, phone_keys: PhoneKeys, token: str, phone: str,
                     reference: str | None) -> tuple[sessions.Loaded, CaseView | None]:
        """First round trip: take the lease and read everything the step needs."""
        deadline = asyncio.get_running_loop().time() + LEASE_WAIT_SECONDS
        pause = LEASE_POLL_FIRST
        while True:
            async with self.redis.pipeline(transaction=False) as pipe:
                sessions.queue_begin(pipe, phone_keys, token)
                if reference:
                    case_store.queue_case_lookup(pipe, reference=reference, phone=phone)
                results = await pipe.execute()
            loaded = sessions.begin_result(results[0])
            if loaded.acquired:
                lookup = case_store.case_lookup_result(results[1]) if reference else None
                return loaded, _view(lookup)
            if asyncio.get_running_loop().time() > deadline:
                raise PhoneBusy("another process holds this phone's lease")
            await asyncio.sleep(pause)
            pause = min(pause * 2, LEASE_POLL_MAX)

    async def _step(self, message: InboundMessage, phone_keys: PhoneKeys, token: str,
                    loaded: sessions.Loaded, lookup: CaseView | None) -> Reply | None:
        now = self.clock()
        profile = Profile.from_json(loaded.profile) if loaded.profile else None
        draft = Draft.from_json(loaded.draft) if loaded.draft else None
        session = Session.from_json(loaded.session) if loaded.session else None
        context = StepContext(
            channel=message.channel,
            profile=profile,
            draft=draft,
            lookups={lookup.reference: lookup} if lookup else {},
            new_id=token,
            restart=message.restart,
        )
        limits = self.limits(message.channel)
        result = step(self.compiled, session, message.text, now, context, limits)
        session = result.session

        new_profile = profile or Profile(language=session.language)
        draft_json = KEEP
        created: list[str] = []
        withdrawals = 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for effect in result.effects:
                match effect:
                    case SetLanguage(language=language):
                        new_profile = replace(new_profile, language=language)
                    case SaveDraft(draft=saved):
                        draft_json = saved.to_json()
                    case DiscardDraft():
                        draft_json = DELETE
                    case CreateCase():
                        candidates = [draw_reference() for _ in range(CANDIDATE_REFERENCES)]
                        case_store.queue_create_case(
                            pipe,
                            new_case=self._new_case(effect, message, now),
                            candidates=candidates,
                            idempotency_key=effect.idempotency_key,
                            pii_key=self.pii_key,
                        )
                        session.vars["reference"] = candidates[0]
                        created.append(candidates[0])
                    case WithdrawCase(reference=reference):
                        case_store.queue_withdraw_by_migrant(
                            pipe, reference=reference, phone=message.phone, now=now
                        )
                        withdrawals += 1
            ended = result.reply.end
            sessions.queue_commit(pipe, phone_keys, token, Commit(
                session_json="" if ended else session.to_json(),
                session_ttl=self.session_ttl(message.channel),
                profile_json=new_profile.to_json() if new_profile != profile else KEEP,
                profile_ttl=self.settings.retention_days * DAY_SECONDS,
                draft_json=draft_json,
                draft_ttl=self.settings.draft_ttl,
            ))
            results = await pipe.execute()
        if not sessions.commit_saved(results[-1]):
            log.warning("lease lost during a step; retrying")
            return None
        return self._final_reply(result.reply, session, results[:-1], created, withdrawals,
                                 limits)

    def _final_reply(self, reply: Reply, session: Session, effect_results: list[Any],
                     created: list[str], withdrawals: int, limits: Limits) -> Reply:
        """The reply once effects are done: the real reference, or a refused withdrawal."""
        index = 0
        if created:
            chosen = case_store.create_case_result(effect_results[index])
            index += 1
            if chosen != created[0]:
                # Another case took the first candidate meanwhile (odds ~ cases/10^7): the
                # reply shows the real reference; the saved session is already ended or
                # is corrected by the next screen that needs it.
                log.warning("reference candidate collision")
            session.vars["reference"] = chosen
            reply = render(self.compiled.flow, session, limits)
        if withdrawals and not case_store.withdraw_result(effect_results[index]):
            flow = self.compiled.flow
            reply = Reply(text=flow.text("withdraw_refused", session.language), end=reply.end)
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


def _typed_reference(text: str) -> str | None:
    """The reference a message carries, if it is one: it is looked up with the session."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) != 8:
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
