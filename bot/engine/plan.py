"""What one message will write: its turn, computed from a phone's stored state.

Pure: no Redis, no clock, no randomness. The conversation (`bot.conversation`) passes in
the phone's state, what it read of its cases, the time, the lease token and a way to draw
case references; the planner returns a `Plan` naming its `Route`, the values to write
(`Commit`) and the effects. A plan that needs a read first (a typed reference, the
phone's open return request) says so; the conversation reads it and plans again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from bot.bounded import Bounded
from bot.cases.references import parse_reference
from bot.engine.receipts import SCREEN, Receipts, new_input, stored_history, ussd_session_digest
from bot.engine.render import Limits, Reply, fill, render
from bot.engine.session import (
    DELETE,
    KEEP,
    NO_EXPIRY,
    NO_READS,
    SAME_AS_SESSION,
    CaseView,
    Commit,
    CreateCase,
    DiscardDraft,
    Draft,
    NeedOpenRequest,
    Opening,
    PhoneState,
    Profile,
    Reads,
    RecordFollowup,
    SaveDraft,
    Session,
    SetLanguage,
    SubscribeAlerts,
    Ttls,
    UnsubscribeAlerts,
    WithdrawCase,
    draft_of,
)
from bot.engine.spelling import spelled
from bot.engine.turns import Inbound, Turn, turn
from bot.errors import InvalidReference
from bot.flows.compiler import CompiledFlow
from bot.outreach.subscriptions import Subscription, alerts_change
from bot.types import Channel, statically_frozen

REFERENCE_DIGITS = 8
KNOWN_SCREENS = 8192

DrawReferences = Callable[[], list[str]]
"""Fresh candidate references for a case to create, the first one preferred."""


@statically_frozen
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
    pseudonym: str = ""
    """The phone's pseudonym when the channel computed it (`privacy.Senders`), else ''."""
    opening: Opening | None = None
    """A conversation the helpline starts (a follow-up check-in): with `restart`, it
    opens there."""
    whatsapp: bool = False  # an SMS-channel message from a `whatsapp:` sender


class Outcome(StrEnum):
    ANSWERED = "answered"
    REPEATED = "repeated"
    """A retried message or hop, answered as before without advancing."""
    SILENT = "silent"
    """An opted-out phone: nothing said."""
    RATE_LIMITED = "rate_limited"


class Route(StrEnum):
    """How a plan is written (`bot.conversation.writer`)."""

    NOTHING = "nothing"
    """Nothing to write: a replayed USSD hop, answered again."""
    STEP = "step"
    """The phone's values, with at most one case created: one script (STEP from the state
    the conversation assumed, COMMIT under the lease)."""
    EFFECTS = "effects"
    """Withdrawals, erasure, references never shown or several cases: under the lease,
    the effects pipelined before COMMIT."""


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
    lookup_needed: str | None = None  # a typed reference not read yet: read it, plan again
    language: str | None = None
    open_request_needed: bool = False
    """The turn asks whether this phone has a return request open: read it, plan again."""
    unseen: list[str] = field(default_factory=list)
    """Idempotency keys of cases this phone was never told about: shown with this reply."""
    decoded: tuple[Session | None, Receipts, Profile | None] | None = None
    """Session, receipts, profile once written, as objects: the next message starts there."""
    subscribe: Subscription | None = None  # alerts to subscribe to, written before the commit
    unsubscribe: bool = False  # the alert subscription ends (STOP, an erasure), the same

    @property
    def needs_read(self) -> bool:
        return self.lookup_needed is not None or self.open_request_needed

    @property
    def route(self) -> Route:
        if self.commit is None:
            return Route.NOTHING
        if self.withdrawals or self.followups or self.erase or self.unseen \
                or len(self.creations) > 1:
            return Route.EFFECTS
        return Route.STEP

    @property
    def created(self) -> list[str]:
        return [candidates[0] for _, candidates in self.creations]


def typed_reference(text: str) -> str | None:
    """The reference a message carries, if it is one."""
    if len(text) < REFERENCE_DIGITS:
        return None  # most inputs: a menu key
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) != REFERENCE_DIGITS:
        return None
    try:
        return parse_reference(digits)
    except InvalidReference:
        return None


_NO_RECEIPTS = Receipts()
_NO_RECEIPTS_JSON = _NO_RECEIPTS.to_json()
_NO_LOOKUPS: Mapping[str, CaseView] = MappingProxyType({})


class Planner:
    """Plans the turns of one compiled flow, each channel with its limits and TTLs."""

    def __init__(self, compiled: CompiledFlow, *, limits: Mapping[Channel, Limits],
                 ttls: Mapping[Channel, Ttls]) -> None:
        self.compiled = compiled
        self.limits = limits
        self.ttls = ttls
        self.screens: Bounded[tuple[object, ...], tuple[Reply | None, str]] = Bounded(
            KNOWN_SCREENS)
        """Bare sessions' screens and JSON (`_bare`)."""

    def said(self, name: str, language: str, channel: Channel,
             values: Mapping[str, str] | None = None) -> str:
        """A text of the flow on its own, filled and spelled for the channel."""
        flow = self.compiled.flow
        return spelled(flow, language, channel,
                       fill(flow, flow.text(name, language), language, values or {}, {}))

    def shown_again(self, text: str, stored_session: str | None, channel: Channel) -> str:
        return self._shown_again(text, stored_session, self.limits[channel])

    def _bare(self, session: Session, limits: Limits) -> tuple[Reply | None, str]:
        """The screen of `bare(session)` (None when it cannot be rendered without answers)
        and its JSON: asked every hop, the same few screens for every phone (`limits`: the
        planner's own of its channel)."""
        key = (limits.channel, session.state, session.language, session.page, session.hint,
               *session.vars.items())
        known = self.screens.get(key)
        if known is None:
            plain = bare(session)
            try:
                screen: Reply | None = render(self.compiled.flow, plain, limits)
            except (KeyError, ValueError, IndexError):
                screen = None
            known = (screen, plain.to_json())
            self.screens.put(key, known)
        return known

    def _shown_again(self, text: str, stored_session: str | None, limits: Limits) -> str:
        """An answer's text as it was said (a SCREEN marker rendered again)."""
        if not text.startswith(SCREEN):
            return text
        source = text[len(SCREEN):] or stored_session
        if not source:
            return ""
        screen, _ = self._bare(Session.from_json(source), limits)
        return screen.text if screen is not None else ""

    def _retry_text(self, session: Session, session_json: str, reply: Reply,
                    limits: Limits) -> str:
        """The last answer as kept for a retry: the screen it is (Redis memory), rendered
        again for the retry, when the session's state, language and variables alone render
        the very reply (SCREEN alone when that session is the one stored, else SCREEN and its
        bare JSON); else the reply's text."""
        screen, bare_json = self._bare(session, limits)
        if screen is not reply and screen != reply:  # a static screen's reply is one object
            return reply.text
        if session_json in (KEEP, DELETE):
            return SCREEN + bare_json
        return SCREEN

    def plan(self, message: InboundMessage, state: PhoneState, *, digest: str, token: str,
             now: datetime, draw: DrawReferences, reads: Reads = NO_READS) -> Plan:
        """`digest`: the message id's (retries), `token`: the lease token (new ids)."""
        compiled, limits = self.compiled, self.limits[message.channel]
        known: tuple[Session | None, Receipts, Profile | None] | None = state.decoded
        if known is not None:  # what this process wrote: nothing to decode
            session, receipts, profile = known
        else:
            profile = Profile.from_json(state.profile) if state.profile else None
            session = Session.from_json(state.session) if state.session else None
            receipts = Receipts.from_json(state.receipts) if state.receipts else _NO_RECEIPTS
        stored_session = session
        text, restart = message.text, message.restart
        ussd_session, applied, last = receipts.ussd_session, receipts.ussd_applied, receipts.last
        if message.ussd_session:
            ussd_session = ussd_session_digest(message.ussd_session)
            applied = stored_history(message.text)
            hop = new_input(seen_session=receipts.ussd_session, applied=receipts.ussd_applied,
                            session_id=ussd_session, history=applied)
            if hop.replay and last is not None:
                shown = self._shown_again(last.text, state.session, limits)
                return Plan(reply=Reply(text=shown, end=last.end), outcome=Outcome.REPEATED)
            text, restart = hop.text, hop.restart or hop.replay
        typed = typed_reference(text)
        if typed is not None and reads.looked_up != typed:
            return Plan(reply=Reply(text=""), lookup_needed=typed)
        # The stored draft matters to a step that starts a conversation or offers to resume
        # one (an SMS keyword may restart it): not to one inside a conversation.
        needs_draft = session is None or restart or session.resuming \
            or message.channel is Channel.SMS
        draft = draft_of(state, session) if needs_draft else None
        decided = turn(compiled, Inbound(
            channel=message.channel, text=text, session=session, profile=profile, draft=draft,
            receipts=receipts, lookups={reads.lookup.reference: reads.lookup}
            if reads.lookup else _NO_LOOKUPS, new_id=token, restart=restart,
            open_request=reads.open_request, open_request_known=reads.open_known,
            opening=message.opening,
        ), now, limits)
        if decided.erase:
            receipts = Receipts(ussd_session=ussd_session, ussd_applied=applied)
        else:
            # The last answer is the stored session's screen (SCREEN alone): once that
            # session changes, the answer names the screen it was.
            was_screen = None
            if last is not None and last.text == SCREEN and not decided.keep_session:
                was_screen = SCREEN + self._bare(session, limits)[1] \
                    if session is not None else ""
            receipts = receipts.turned(ussd_session, applied, decided.pending, was_screen)
        written = self._written(message, decided, profile, receipts, state.receipts, digest,
                                limits, now, draw)
        if state.unseen and written.commit is not None and not decided.silent:
            written.unseen = sorted(set(state.unseen.split()))
            written.commit = replace(written.commit, unseen=DELETE)
        if written.commit is not None and written.decoded is not None \
                and written.commit.session_json == KEEP:
            written.decoded = (stored_session, *written.decoded[1:])
        return written

    def _written(self, message: InboundMessage, decided: Turn, profile: Profile | None,
                 receipts: Receipts, stored: str | None, digest: str, limits: Limits,
                 now: datetime, draw: DrawReferences) -> Plan:
        """The turn as values to write: session, profile, draft and receipts (`receipts`: as
        the turn left them, before its answer; `stored`: their JSON as stored)."""
        session = decided.session
        reply = decided.reply
        new_profile = decided.profile or profile
        draft_json = KEEP
        save_draft = False
        creations: list[tuple[CreateCase, list[str]]] = []
        withdrawals: list[WithdrawCase] = []
        followups: list[RecordFollowup] = []
        # A profile is kept long only for what the migrant chose (a language, an opt-out);
        # a phone that chose nothing has one no longer than its session.
        chose = decided.profile is not None
        open_request_needed = alerts = False
        for effect in decided.effects:  # one pass, in order (a hop has one or two)
            match effect:
                case SaveDraft():
                    save_draft = True
                case SetLanguage(language=language):
                    new_profile = replace(new_profile or Profile(), language=language)
                    chose = True
                case DiscardDraft():
                    draft_json, save_draft = DELETE, False
                case CreateCase():
                    creations.append((effect, draw()))
                case WithdrawCase():
                    withdrawals.append(effect)
                case NeedOpenRequest():
                    open_request_needed = True
                case RecordFollowup():
                    followups.append(effect)
                case SubscribeAlerts() | UnsubscribeAlerts():
                    alerts = True
        if session is not None and creations:
            session.vars["reference"] = creations[0][1][0]
            reply = render(self.compiled.flow, session, limits)
        if new_profile is None and session is not None and not decided.erase:
            new_profile = Profile(language=session.language)
        if decided.keep_session:
            session_json = KEEP
        elif session is None or reply.end:
            session_json = DELETE
        else:
            session_json = session.to_json()  # shared from now on (`decoded`), never changed
        if save_draft and session is not None:  # the session is the draft (`Draft.of` it)
            if session_json not in (KEEP, DELETE):
                draft_json = SAME_AS_SESSION  # stored once: the session's payload is the draft
            elif (saved := Draft.of(session)) is not None:
                draft_json = saved.to_json()
        if digest:
            kept_text = reply.text
            if session is not None and kept_text and limits.channel is not Channel.VOICE:
                kept_text = self._retry_text(session, session_json, reply, limits)
            answered = receipts.answered(digest, kept_text, reply.end)
        else:
            answered = receipts
        receipts_json = answered.to_json()
        if receipts_json == (stored or _NO_RECEIPTS_JSON):
            receipts_json = KEEP
        ttls = self.ttls[message.channel]
        profile_json, profile_ttl, kept_profile = KEEP, ttls.profile, profile
        if new_profile is not None and new_profile is not profile and new_profile != profile \
                and not decided.erase:
            profile_json, kept_profile = new_profile.to_json(), new_profile
            if new_profile.opted_out:
                profile_ttl = NO_EXPIRY  # an opt-out holds until START, however long
            elif profile is None and not chose:
                profile_ttl = ttls.session
        if decided.erase:  # forgets everything but a STOP: still no SMS, until START
            kept_profile = Profile(opted_out=True) if profile and profile.opted_out else None
            if kept_profile is not None:
                profile_json, profile_ttl = kept_profile.to_json(), NO_EXPIRY
        session_ttl = ttls.session
        if ttls.survey and session is not None and session.state in ttls.survey_states:
            session_ttl = ttls.survey  # a check-in waits days for its answers (docs/spec.md §11)
        commit = Commit(
            session_json=session_json, session_ttl=session_ttl,
            profile_json=profile_json, profile_ttl=profile_ttl,
            draft_json=KEEP if decided.erase else draft_json, draft_ttl=ttls.draft,
            receipts_json=receipts_json, receipts_ttl=ttls.session,
        )
        written = Plan(
            reply=reply,
            outcome=Outcome.SILENT if decided.silent else Outcome.ANSWERED,
            commit=commit,
            session=session,
            creations=creations,
            withdrawals=withdrawals,
            followups=followups,
            erase=decided.erase,
            receipts=receipts,
            language=session.language if session else None,
            open_request_needed=open_request_needed,
            decoded=(None if session_json in (KEEP, DELETE) else session, answered, kept_profile),
        )
        if alerts or decided.erase:  # rare
            written.subscribe, written.unsubscribe = alerts_change(
                decided.effects, erase=decided.erase, phone=message.phone,
                whatsapp=message.whatsapp, now=now)
        return written


def bare(session: Session) -> Session:
    """What a screen is rendered from, but the answers and history: state, language,
    variables, page and hint (the receipts' SCREEN marker)."""
    return Session(state=session.state, language=session.language, vars=session.vars,
                   page=session.page, hint=session.hint)
