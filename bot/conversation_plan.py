"""What one message will write: its turn, computed from a phone's stored state.

Pure (no Redis, the clock and the lease token passed in): the conversation
plans from the state it assumes the phone is in (written in one round trip
when the assumption holds) or from the state BEGIN loaded under the lease.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from bot.cases.references import parse_reference
from bot.engine.receipts import SCREEN, Receipts, stored_history, ussd_session_digest
from bot.engine.render import Limits, Reply, render
from bot.engine.session import (
    CaseView,
    CreateCase,
    DiscardDraft,
    Draft,
    NeedOpenRequest,
    Opening,
    Profile,
    RecordFollowup,
    SaveDraft,
    Session,
    SetLanguage,
    WithdrawCase,
)
from bot.engine.turns import Inbound, Turn, turn
from bot.engine.ussd_input import SEPARATOR, new_input
from bot.errors import InvalidReference
from bot.flows.compiler import CompiledFlow
from bot.store.cases import draw_candidates
from bot.store.keys import CASE_SHARDS
from bot.store.phone_state import SAME_AS_SESSION
from bot.store.sessions import DELETE, KEEP, NO_EXPIRY, Commit, PhoneState
from bot.types import Channel

CANDIDATE_REFERENCES = 4
REFERENCE_DIGITS = 8
KNOWN_VALUES = 8192
"""Stored values whose decoded (immutable) form is remembered, per kind."""

T = TypeVar("T")


class _Decoded(Generic[T]):
    """Immutable values by the JSON they are stored as: a value this process wrote (or read)
    is not parsed again at the next message. The last `KNOWN_VALUES` / 2 to `KNOWN_VALUES`
    values are kept, in two generations: the newer fills up, then replaces the older
    (no per-value eviction: a plain dict's first key is found by skipping every slot
    deleted before it, and an OrderedDict's bookkeeping costs more than the look-up)."""

    def __init__(self, decode: Callable[[str], T]) -> None:
        self._decode = decode
        self._newer: dict[str, T] = {}
        self._older: dict[str, T] = {}

    def __call__(self, raw: str) -> T:
        value = self._newer.get(raw)
        if value is None:
            value = self._older.get(raw)
            if value is None:
                value = self._decode(raw)
            self.remember(raw, value)
        return value

    def remember(self, raw: str, value: T) -> None:
        self._newer[raw] = value
        if len(self._newer) >= KNOWN_VALUES // 2:
            self._older, self._newer = self._newer, {}


_profiles = _Decoded(Profile.from_json)
_sessions = _Decoded(Session.from_json)
"""Sessions as decoded, shared: never changed (the step changes a copy of its own)."""
_drafts = _Decoded(Draft.from_json)
_receipts = _Decoded(Receipts.from_json)


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
    opening: Opening | None = None
    """A conversation the helpline starts (a follow-up check-in): with `restart`, it
    opens there."""


class Outcome(StrEnum):
    ANSWERED = "answered"
    REPEATED = "repeated"
    """A retried message or hop, answered as before without advancing."""
    SILENT = "silent"
    """An opted-out phone: nothing said."""
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class Ttls:
    session: int
    profile: int
    draft: int
    survey: int = 0
    """A session in a follow-up survey lives this long instead (HELPLINE_FOLLOWUP_TTL)."""
    survey_states: frozenset[str] = frozenset()


@dataclass
class Plan:
    reply: Reply
    """The reply, as it will be unless the effects on cases change it."""
    outcome: Outcome = Outcome.ANSWERED
    commit: Commit | None = None
    """None: nothing to write (a replayed USSD hop)."""
    session: Session | None = None
    creations: list[tuple[CreateCase, list[str]]] = field(default_factory=list)
    """Each case to create, with its candidate references."""
    withdrawals: list[WithdrawCase] = field(default_factory=list)
    followups: list[RecordFollowup] = field(default_factory=list)
    """Check-ins whose survey this turn ended: their scores to record."""
    erase: bool = False
    receipts: Receipts = field(default_factory=Receipts)
    """The receipts before this message's answer is added (to correct it afterwards)."""
    lookup_needed: str | None = None
    """A reference typed in this hop that BEGIN did not read: look it up, plan again."""
    language: str | None = None
    open_request_needed: bool = False
    """The turn asks whether this phone has a return request open: read it, plan again."""
    unseen: list[str] = field(default_factory=list)
    """Idempotency keys of cases this phone was never told about: shown with this reply."""
    decoded: tuple[Session | None, Receipts] | None = None
    """The session and receipts once `commit` is written, as objects (`PhoneState.decoded`):
    the phone's next message starts from them, not from their JSON."""

    @property
    def in_one_trip(self) -> bool:
        """Only per-phone keys to write: STEP can do it all in one round trip."""
        return (self.commit is not None and not self.creations and not self.withdrawals
                and not self.followups and not self.erase and self.lookup_needed is None
                and not self.unseen and not self.open_request_needed)

    @property
    def creates_only(self) -> bool:
        """Per-phone keys and one case to create, nothing else: one script (STEP_CREATE or
        COMMIT_CREATE), the phone's state being in its case shard's slot."""
        return (self.commit is not None and len(self.creations) == 1 and not self.withdrawals
                and not self.followups and not self.erase and self.lookup_needed is None
                and not self.unseen and not self.open_request_needed)

    @property
    def created(self) -> list[str]:
        return [candidates[0] for _, candidates in self.creations]


def typed_reference(text: str) -> str | None:
    """The reference a message carries, if it is one: it is looked up with the session."""
    if len(text) < REFERENCE_DIGITS:
        return None  # most inputs: a menu key
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) != REFERENCE_DIGITS:
        return None
    try:
        return parse_reference(digits)
    except InvalidReference:
        return None


def latest_input(message: InboundMessage) -> str:
    """The input a message most likely brings (exact once the USSD history is known)."""
    if message.ussd_session:
        return message.text.rsplit(SEPARATOR, 1)[-1]
    return message.text


def plan(compiled: CompiledFlow, message: InboundMessage, state: PhoneState, *,
         lookup: CaseView | None, digest: str, token: str, now: datetime, limits: Limits,
         ttls: Ttls, case_shard: int | None = None,
         open_request: CaseView | None = None, open_request_known: bool = False) -> Plan:
    """`case_shard`: the case shard where this phone's new cases go (random when None).
    `open_request`: this phone's open return request, once read (`open_request_known`)."""
    profile = _profiles(state.profile) if state.profile else None
    known: tuple[Session | None, Receipts] | None = state.decoded
    if known is not None:  # what this process wrote: nothing to decode, not even looked up
        session, receipts = known
    else:
        session = _sessions(state.session) if state.session else None
        receipts = _receipts(state.receipts) if state.receipts else _NO_RECEIPTS
    stored_session = session
    text, restart = message.text, message.restart
    lookup_needed = None
    if message.ussd_session:
        session_digest = _ussd_session_digest(message.ussd_session)
        history = stored_history(message.text)
        hop = new_input(seen_session=receipts.ussd_session, applied=receipts.ussd_applied,
                        session_id=session_digest, history=history)
        last = receipts.last
        if hop.replay and last is not None:
            text = shown_again(compiled, last.text, state.session, limits)
            return Plan(reply=Reply(text=text, end=last.end), outcome=Outcome.REPEATED)
        text, restart = hop.text, hop.restart or hop.replay
        receipts = receipts.with_hop(session_digest, history)
        typed = typed_reference(text)
        if typed and (lookup is None or lookup.reference != typed):
            lookup_needed = typed
    # The stored draft matters to a step that starts a conversation or offers to resume
    # one (an SMS keyword may restart it): not to one inside a conversation.
    needs_draft = session is None or restart or session.resuming \
        or message.channel is Channel.SMS
    draft = _draft_of(state, session) if needs_draft else None
    # The last answer is the stored session's screen (SCREEN alone): once that session
    # changes, the answer names the screen it was (taken before the turn changes it).
    last = receipts.last
    was_screen = (SCREEN + _bare_json(session) if session is not None else "") \
        if last is not None and last.text == SCREEN else None
    decided = turn(compiled, Inbound(
        channel=message.channel,
        text=text,
        session=session,
        profile=profile,
        draft=draft,
        receipts=receipts,
        lookups={lookup.reference: lookup} if lookup else _NO_LOOKUPS,
        new_id=token,
        restart=restart,
        open_request=open_request,
        open_request_known=open_request_known,
        opening=message.opening,
    ), now, limits)
    if decided.erase:
        receipts = Receipts(ussd_session=receipts.ussd_session, ussd_applied=receipts.ussd_applied)
    shard = secrets.randbelow(CASE_SHARDS) if case_shard is None else case_shard
    written = _written(compiled, decided, profile, receipts, state.receipts, digest, limits,
                       ttls, lookup_needed, shard, was_screen)
    if state.unseen and written.commit is not None and not decided.silent:
        written.unseen = sorted(set(state.unseen.split()))
        written.commit = replace(written.commit, unseen=DELETE)
    if written.commit is not None and written.decoded is not None \
            and written.commit.session_json == KEEP:
        written.decoded = (stored_session, written.decoded[1])
    return written


def _draft_of(state: PhoneState, session: Session | None) -> Draft | None:
    """The stored draft; one stored as the session's own payload is taken from the
    decoded session (no second decoding)."""
    if not state.draft:
        return None
    if state.draft == state.session and session is not None:
        draft = Draft.of(session)  # shares the session's answers: neither is changed
        if draft is not None:
            return draft
    return _drafts(state.draft)


_NO_RECEIPTS = Receipts()
_NO_RECEIPTS_JSON = _NO_RECEIPTS.to_json()
_NO_LOOKUPS: Mapping[str, CaseView] = MappingProxyType({})


@lru_cache(maxsize=4096)
def _ussd_session_digest(session_id: str) -> str:
    """`ussd_session_digest`, remembered: every hop of a USSD session asks again."""
    return ussd_session_digest(session_id)


def _is_draft_of(session: Session, draft: Draft) -> bool:
    """`Draft.of(session) == draft`, without making the draft."""
    return (session.draft_id is not None and draft.draft_id == session.draft_id
            and draft.state == session.state and draft.language == session.language
            and draft.consent_at == session.consent_at
            and draft.history == tuple(session.history) and draft.answers == session.answers)


def bare(session: Session) -> Session:
    """What a screen is rendered from, but the answers and history: state, language,
    variables, page and hint (the receipts' SCREEN marker)."""
    return Session(state=session.state, language=session.language, vars=session.vars,
                   page=session.page, hint=session.hint)


_BARE_JSON: OrderedDict[tuple[Any, ...], str] = OrderedDict()


def _bare_json(session: Session) -> str:
    """`bare(session).to_json()`, remembered (the same few screens for every phone)."""
    key = (session.state, session.language, session.page, session.hint,
           tuple(session.vars.items()))
    known = _BARE_JSON.get(key)
    if known is None:
        known = _BARE_JSON[key] = bare(session).to_json()
        if len(_BARE_JSON) > KNOWN_VALUES:
            _BARE_JSON.popitem(last=False)
    return known


_BARE_SCREENS: OrderedDict[tuple[Any, ...], tuple[CompiledFlow, Reply | None]] = OrderedDict()


def _bare_screen(compiled: CompiledFlow, session: Session, limits: Limits) -> Reply | None:
    """The screen of `bare(session)` (None when it cannot be rendered without answers);
    remembered, as most screens are the same for every phone."""
    key = (id(compiled), limits, session.state, session.language, session.page, session.hint,
           tuple(session.vars.items()))
    known = _BARE_SCREENS.get(key)
    if known is not None and known[0] is compiled:
        return known[1]
    try:
        screen: Reply | None = render(compiled.flow, bare(session), limits)
    except (KeyError, ValueError, IndexError):
        screen = None
    _BARE_SCREENS[key] = (compiled, screen)
    if len(_BARE_SCREENS) > KNOWN_VALUES:
        _BARE_SCREENS.popitem(last=False)
    return screen


def shown_again(compiled: CompiledFlow, text: str, stored_session: str | None,
                limits: Limits) -> str:
    """An answer's text as it was said (a SCREEN marker rendered again)."""
    if not text.startswith(SCREEN):
        return text
    source = text[len(SCREEN):] or stored_session
    if not source:
        return ""
    screen = _bare_screen(compiled, Session.from_json(source), limits)
    return screen.text if screen is not None else ""


def _retry_text(compiled: CompiledFlow, session: Session, session_json: str, reply: Reply,
                limits: Limits) -> str:
    """The last answer as kept for a retry: the screen it is (Redis memory), rendered
    again for the retry, when the session's state, language and variables alone render
    the very reply (SCREEN alone when that session is the one stored, else SCREEN and its
    bare JSON); else the reply's text."""
    screen = _bare_screen(compiled, session, limits)
    if screen is not reply and screen != reply:  # a static screen's reply is one object
        return reply.text
    if session_json in (KEEP, DELETE):
        return SCREEN + _bare_json(session)
    return SCREEN


def _written(compiled: CompiledFlow, decided: Turn, profile: Profile | None,
             receipts: Receipts, stored: str | None, digest: str, limits: Limits, ttls: Ttls,
             lookup_needed: str | None, case_shard: int, was_screen: str | None) -> Plan:
    """The turn as values to write: session, profile, draft and receipts (`stored`: the
    receipts' JSON as stored)."""
    session = decided.session
    reply = decided.reply
    new_profile = decided.profile or profile
    draft_json = KEEP
    saved_draft: Draft | None = None
    creations: list[tuple[CreateCase, list[str]]] = []
    withdrawals: list[WithdrawCase] = []
    followups: list[RecordFollowup] = []
    # A profile is kept long only for what the migrant chose (a language, an opt-out);
    # a phone that chose nothing has one no longer than its session.
    chose = decided.profile is not None
    open_request_needed = False
    for effect in decided.effects:  # one pass, in order (a hop has one or two)
        match effect:
            case SaveDraft(draft=saved):
                saved_draft = saved
            case SetLanguage(language=language):
                new_profile = replace(new_profile or Profile(), language=language)
                chose = True
            case DiscardDraft():
                draft_json, saved_draft = DELETE, None
            case CreateCase():
                creations.append((effect, draw_candidates(case_shard, CANDIDATE_REFERENCES)))
            case WithdrawCase():
                withdrawals.append(effect)
            case NeedOpenRequest():
                open_request_needed = True
            case RecordFollowup():
                followups.append(effect)
    if session is not None and creations:
        session.vars["reference"] = creations[0][1][0]
        reply = render(compiled.flow, session, limits)
    if new_profile is None and session is not None and not decided.erase:
        new_profile = Profile(language=session.language)
    if was_screen is not None and (not decided.keep_session or decided.erase):
        receipts = receipts.with_last_text(was_screen)
    receipts = receipts.with_pending(decided.pending)
    if decided.keep_session:
        session_json = KEEP
    elif session is None or reply.end:
        session_json = DELETE
    else:
        session_json = session.to_json()  # shared from now on (`decoded`), never changed
    if saved_draft is not None:
        if session_json not in (KEEP, DELETE) and session is not None \
                and _is_draft_of(session, saved_draft):
            draft_json = SAME_AS_SESSION  # stored once: the session's payload is the draft
        else:
            draft_json = saved_draft.to_json()
            _drafts.remember(draft_json, saved_draft)
    if digest:
        kept_text = reply.text
        if session is not None and kept_text and limits.channel is not Channel.VOICE:
            kept_text = _retry_text(compiled, session, session_json, reply, limits)
        answered = receipts.answered(digest, kept_text, reply.end)
    else:
        answered = receipts
    receipts_json = answered.to_json()
    if receipts_json == (stored or _NO_RECEIPTS_JSON):
        receipts_json = KEEP
    profile_json, profile_ttl = KEEP, ttls.profile
    if new_profile is not None and new_profile != profile and not decided.erase:
        profile_json = new_profile.to_json()
        _profiles.remember(profile_json, new_profile)
        if new_profile.opted_out:
            profile_ttl = NO_EXPIRY  # an opt-out holds until START, however long
        elif profile is None and not chose:
            profile_ttl = ttls.session
    if decided.erase and profile is not None and profile.opted_out:
        # Erasure forgets everything but the STOP itself: still no SMS, until START.
        profile_json, profile_ttl = Profile(opted_out=True).to_json(), NO_EXPIRY
    session_ttl = ttls.session
    if ttls.survey and session is not None and session.state in ttls.survey_states:
        session_ttl = ttls.survey  # a check-in waits days for its answers (docs/spec.md §11)
    commit = Commit(
        session_json=session_json,
        session_ttl=session_ttl,
        profile_json=profile_json,
        profile_ttl=profile_ttl,
        draft_json=KEEP if decided.erase else draft_json,
        draft_ttl=ttls.draft,
        receipts_json=receipts_json,
        receipts_ttl=ttls.session,
    )
    return Plan(
        reply=reply,
        outcome=Outcome.SILENT if decided.silent else Outcome.ANSWERED,
        commit=commit,
        session=session,
        creations=creations,
        withdrawals=withdrawals,
        followups=followups,
        erase=decided.erase,
        receipts=receipts,
        lookup_needed=lookup_needed,
        language=session.language if session else None,
        open_request_needed=open_request_needed,
        decoded=(None if session_json in (KEEP, DELETE) else session, answered),
    )
