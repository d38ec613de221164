"""The one inbound-message loop, shared by every channel and by `helpline chat`.

A message's road, serialised per phone (`PhoneLocks`):

1. plan the turn (`bot.engine.plan`) from the phone's state as this process last
   wrote it (nothing stored, for a phone it does not know); a plan that needs
   to read the phone's cases first (a typed reference, its open return
   request) reads them and plans again;
2. write it (`writer`): a plan whose route is STEP is written in one script
   that checks the state is still the one assumed (else Redis answers the
   fresh state with the lease taken, and the turn is planned again from it);
   any other route first takes the phone's lease and reads its state (BEGIN),
   then is planned again and written under the lease;
3. answer: the reply as written, remembered with the state for the phone's
   next message.

So a hop is one round trip when this process knows the phone, two when it
must read first. Retries (receipts) and the SMS rate limit (`rate_limit`) are
answered by the same scripts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from redis.exceptions import RedisError

from bot import privacy
from bot.bounded import Bounded
from bot.conversation.background import Background
from bot.conversation.writer import Hop, Writer, begin, read
from bot.engine.keywords import is_emergency
from bot.engine.plan import InboundMessage, Outcome, Plan, Planner, Route
from bot.engine.receipts import Receipts, message_digest
from bot.engine.render import Limits, Reply
from bot.engine.session import NO_READS, NOTHING_STORED, PhoneState, Ttls
from bot.engine.survey import survey_states
from bot.errors import PhoneBusy
from bot.flows.compiler import CompiledFlow
from bot.settings import Settings
from bot.store import cases as case_store
from bot.store import keys, phone_state, scripts
from bot.store.scripts import is_cluster
from bot.store.sessions import NO_RATE_LIMIT, Begun, Loaded, PhoneKeys, RateLimit
from bot.types import Channel, statically_frozen

log = logging.getLogger(__name__)

LOST_LEASE_RETRIES = 3
DAY_SECONDS = 24 * 3600
KNOWN_STATES = 20_000
"""Phones whose last written state this process remembers (one-round-trip steps)."""
KNOWN_LANGUAGES = 10_000
"""Phones whose language this process remembers, to say the fallback in it."""


utcnow: Callable[[], datetime] = partial(datetime.now, UTC)


@statically_frozen
class Handled:
    reply: Reply
    outcome: Outcome = Outcome.ANSWERED
    newly_limited: bool = False
    """This message took the phone over the rate limit."""


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
        self.default_language = compiled.flow.default_language
        self.pii_key = privacy.pii_key(settings)
        self.sms_rate_limit = sms_rate_limit
        self.planner = Planner(
            compiled,
            limits={channel: Limits(channel, settings.ussd_max_chars) for channel in Channel},
            ttls={channel: Ttls(session=self.session_ttl(channel),
                                profile=settings.retention_days * DAY_SECONDS,
                                draft=settings.draft_ttl, survey=settings.followup_ttl,
                                survey_states=survey_states(compiled.flow))
                  for channel in Channel})
        self.locks = PhoneLocks()
        self.background = Background(redis, settings.draft_ttl)
        self.writer = Writer(redis, self.planner, pii_key=self.pii_key,
                             background=self.background, followup_ttl=settings.followup_ttl)
        self._cluster = is_cluster(redis)
        self._known: Bounded[str, PhoneState] = Bounded(KNOWN_STATES)
        self._languages: Bounded[str, str] = Bounded(KNOWN_LANGUAGES)
        self._phone_keys: dict[Channel, Bounded[str, PhoneKeys]] = {
            channel: Bounded(KNOWN_STATES) for channel in Channel}
        """A phone's key names (six strings) by channel, as every hop of a session needs them."""

    def session_ttl(self, channel: Channel) -> int:
        if channel in (Channel.USSD, Channel.VOICE):  # a call lasts minutes, like a USSD session
            return self.settings.ussd_ttl
        return self.settings.sms_ttl

    def pseudonym(self, phone: str) -> str:
        return privacy.pseudonym(phone, self.pii_key)

    def language_hint(self, pseudonym: str) -> str:
        """The language this process last spoke with the phone (no Redis needed)."""
        return self._languages.get(pseudonym) or self.default_language

    async def set_language(self, phone: str, language: str) -> None:
        """Remember `language` for this phone, as the language menu would."""
        if language not in self.compiled.flow.languages:
            raise ValueError(f"language must be one of {', '.join(self.compiled.flow.languages)}")
        pseudonym = self.pseudonym(phone)
        self._known.pop(pseudonym)
        await phone_state.update_profile(self.redis, pseudonym=pseudonym, language=language,
                                         ttl=self.settings.retention_days * DAY_SECONDS)

    async def handle(self, message: InboundMessage) -> Reply:
        return (await self.process(message)).reply

    async def process(self, message: InboundMessage) -> Handled:
        pseudonym = message.pseudonym or self.pseudonym(message.phone)
        known_keys = self._phone_keys[message.channel]
        phone_keys = known_keys.get(pseudonym)
        if phone_keys is None:
            phone_keys = PhoneKeys.of(pseudonym, message.channel, cluster=self._cluster)
            known_keys.put(pseudonym, phone_keys)
        if not self.locks.take(pseudonym):  # most messages: the phone is free, no wait
            await self.locks.wait(pseudonym)
        try:
            for _ in range(LOST_LEASE_RETRIES):
                handled = await self._turn(message, phone_keys)
                if handled is not None:
                    return handled
            raise PhoneBusy("lost the phone's lease three times in a row")
        finally:
            self.locks.give_back(pseudonym)

    async def start(self) -> None:
        """At start-up, so that no hop pays for them: the script connection opened, the
        scripts loaded and the replica count read. A Redis not up yet is no failure:
        the connection opens at the first message, a script is sent by its body the
        first time, the count is read at the first case."""
        try:
            connect = getattr(self.redis, "connect", None)  # the script lane's
            if connect is not None:
                await connect()
            await scripts.load_all(self.redis)
            await self.writer.replicas.refresh(self.redis)
        except (RedisError, OSError) as error:
            log.warning("Redis not reachable at start-up: %s", type(error).__name__)

    async def aclose(self) -> None:
        """Wait for the background work still running (lease releases, unseen marks)."""
        await self.background.aclose()

    async def _turn(self, message: InboundMessage, phone_keys: PhoneKeys) -> Handled | None:
        """One message's road; None when the lease was lost before the write (again)."""
        pseudonym = phone_keys.pseudonym
        token = os.urandom(8).hex()  # secrets.token_hex(8), without its three calls
        digest = message_digest(message.message_id) if message.message_id else ""
        counted = NO_RATE_LIMIT if message.channel is not Channel.SMS else rate_limit(
            message.channel, message.text, limit=self.sms_rate_limit, pii_key=self.pii_key)
        now = self.clock()
        hop = Hop(message, phone_keys, token, digest, counted, now)

        def draw() -> list[str]:  # the phone's cases go to its shard (one script's slot)
            return case_store.draw_candidates(keys.shard_of_phone(pseudonym))

        state = self._known.get(pseudonym) or NOTHING_STORED
        leased = False
        reads = NO_READS
        try:
            while True:
                planned = self.planner.plan(message, state, digest=digest, token=token,
                                            now=now, draw=draw, reads=reads)
                if planned.needs_read:
                    reads = await read(self.redis, planned, reads, phone=message.phone,
                                       pseudonym=pseudonym)
                    continue
                route = planned.route
                if not leased and route is not Route.STEP:
                    loaded = await begin(self.redis, hop)
                else:
                    written = await self.writer.write(planned, route, hop, state=state,
                                                      leased=leased)
                    final = written.reply
                    if final is not None:
                        changed = final is not planned.reply and final != planned.reply
                        self._settle(planned, changed, state, pseudonym)
                        if changed and digest:  # the answer kept for a retry, corrected
                            await self.writer.correct_receipts(planned, final, phone_keys,
                                                               digest, message.channel)
                        return Handled(final, planned.outcome)
                    if written.instead is None:
                        return None  # the lease was lost (expired): the turn again
                    loaded = written.instead
                    if loaded.outcome is Begun.BUSY:
                        loaded = await begin(self.redis, hop)
                if loaded.outcome is Begun.ANSWERED:
                    return await self._answered_before(message, phone_keys, loaded, digest)
                if loaded.outcome is Begun.RATE_LIMITED:
                    return self._over_the_limit(message, pseudonym, loaded.newly_limited)
                state, leased = loaded.state, True
        except BaseException:
            self._known.pop(pseudonym)
            self.background.release(phone_keys, token)  # a slow Redis may still run a script
            raise

    async def _answered_before(self, message: InboundMessage, phone_keys: PhoneKeys,
                               loaded: Loaded, digest: str) -> Handled | None:
        """A retried message: the answer it was given, or (its text no longer kept) the
        message handled as a new one."""
        answer = Receipts.from_json(loaded.receipts).answer_for(digest)
        if answer is None:
            return await self._turn(replace(message, message_id=""), phone_keys)
        text = self.planner.shown_again(answer.text, loaded.session, message.channel)
        return Handled(Reply(text=text, end=answer.end), Outcome.REPEATED)

    def _over_the_limit(self, message: InboundMessage, pseudonym: str, newly: bool) -> Handled:
        """Silence, but for one notice when the limit is crossed and for emergencies."""
        if newly:
            log.warning("rate limit reached, no replies until the window passes",
                             extra={"phone": pseudonym, "channel": message.channel})
        language = self.language_hint(pseudonym)
        reply = over_the_limit(message.text, newly=newly, say=lambda name: self.planner.said(
            name, language, message.channel))
        return Handled(reply, Outcome.RATE_LIMITED, newly_limited=newly)

    def _settle(self, planned: Plan, changed: bool, state: PhoneState, pseudonym: str) -> None:
        """Remember what was written (`changed`: the reply is not the one planned)."""
        commit = planned.commit
        if commit is None:  # nothing written: the state is as it was read
            self._known.put(pseudonym, state)
            return
        if changed or planned.erase:
            # What was written is not quite what was planned: forget it, read it next time.
            self._known.pop(pseudonym)
            return
        self._known.put(pseudonym, state.after(commit, planned.decoded))
        if planned.language == self.default_language:
            self._languages.pop(pseudonym)
        elif planned.language is not None:
            self._languages.put(pseudonym, planned.language)


# The SMS rate limit: how a message counts against its phone's limit, and what is
# said past it. USSD and voice are not limited (a session is dialled by hand).
#
# Auto-reply loops cost money and send the same words again and again: a free-text
# body counts against `HELPLINE_RATE_LIMIT` in a row. A person reading topic after
# topic sends menu keys (and the odd name or place): only the ceiling of
# `READER_CEILING` times it applies to them. The counting itself is Redis's (BEGIN
# and STEP, `bot.store.sessions`), in the same script as the step.

READER_CEILING = 4
"""A phone may send `READER_CEILING` × `HELPLINE_RATE_LIMIT` messages a window in all;
`HELPLINE_RATE_LIMIT` applies to one free-text body sent again and again (a loop)."""


def rate_limit(channel: Channel, text: str, *, limit: int, pii_key: bytes) -> RateLimit:
    """How a message counts (`limit`: SMS a phone may send a window, 0 for none)."""
    if channel is not Channel.SMS or limit <= 0:
        return NO_RATE_LIMIT
    body = " ".join(text.split()).casefold()
    typed_keys = all(ch.isdigit() or ch in "*#-" for ch in body.replace(" ", ""))
    keyed = hashlib.blake2b(body.encode(), key=pii_key[:64], digest_size=5)
    return RateLimit(limit=limit * READER_CEILING, repeat_limit=limit,
                     body_digest="" if body and typed_keys else keyed.hexdigest())


def over_the_limit(text: str, *, newly: bool, say: Callable[[str], str]) -> Reply:
    """Silence, but for one notice when the limit is crossed and for emergencies
    (`say`: a text of the flow, by name, in the phone's language)."""
    if is_emergency(text):
        return Reply(text=say("emergency_numbers"))
    if newly:
        return Reply(text=say("rate_limited"))
    return Reply(text="")


# Per-phone locks of one process: a phone's messages are handled one at a time, in
# order.
#
# The Redis lease still guards against other processes; these keep one process
# from polling Redis for a lease its own other task holds.

class PhoneLocks:
    """FIFO locks by phone: concurrent messages of one phone queue in arrival order."""

    def __init__(self) -> None:
        self._held: dict[str, deque[asyncio.Future[None]]] = {}
        """Phones held, each with the messages waiting for it, first come first."""

    def hold(self, phone_key: str) -> Hold:
        return Hold(self._held, phone_key)

    def take(self, phone_key: str) -> bool:
        """Take a free phone's lock at once (no coroutine): False when it is held."""
        if phone_key in self._held:
            return False
        self._held[phone_key] = deque()
        return True

    async def wait(self, phone_key: str) -> None:
        """Wait until the phone's lock is handed over (after `take` said False)."""
        await Hold(self._held, phone_key).__aenter__()

    def give_back(self, phone_key: str) -> None:
        """Release a lock `take` or `hold` gave: to the next message waiting, if any."""
        if self._held[phone_key]:
            Hold(self._held, phone_key).pass_on()
        else:  # most messages: no other message of the phone waits
            del self._held[phone_key]


class Hold:
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
                self.pass_on()  # given the lock as it was cancelled: the next one's now
            raise

    async def __aexit__(self, *_: object) -> None:
        self.pass_on()

    def pass_on(self) -> None:
        waiting = self.held[self.phone_key]
        while waiting:
            turn = waiting.popleft()
            if not turn.done():  # a waiter cancelled meanwhile is skipped
                turn.set_result(None)
                return
        del self.held[self.phone_key]
