"""One inbound message's turn: a keyword, the silence of an opted-out phone, or a step.

Pure, like `step`: the shell loads what a turn needs and carries out what it
decides (save or delete the session, change the profile, erase the phone's
data, apply the step's effects). Keywords apply to SMS (docs/spec.md §5); every text
said comes from the flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.engine import validators
from bot.engine.keywords import Keyword, KeywordMatch, fold, recognise
from bot.engine.receipts import Receipts
from bot.engine.render import Limits, Reply, fill, render
from bot.engine.session import (
    Effect,
    Profile,
    Session,
    StepContext,
    UnsubscribeAlerts,
)
from bot.engine.spelling import spelled
from bot.engine.step import step
from bot.flows.compiler import CompiledFlow
from bot.flows.model import Action, Flow, StateKind
from bot.types import Channel

PENDING_ERASE = "erase"
ALERTS_AFTER_STOP = "alerts_after_stop"
"""Said to a phone that sent STOP and now asks for alerts (none go until START)."""
MAX_ALERT_KEYWORD = 24
CONFIRM = "1"
CANCEL = "2"
SILENCE = Reply(text="")


@dataclass
class Turn:
    reply: Reply
    session: Session | None = None
    """The session to save; None (or an ending reply) deletes it."""
    keep_session: bool = False
    """Leave the stored session as it is."""
    profile: Profile | None = None
    """The phone's profile to save, when the turn changed it."""
    effects: Sequence[Effect] = ()
    pending: str = ""
    """A keyword waiting for confirmation after this turn."""
    erase: bool = False
    """Erase the phone's data and cases' personal fields before saving."""
    silent: bool = False
    """Nothing is said (an opted-out phone)."""


@dataclass(kw_only=True)
class Inbound(StepContext):
    """What the shell loaded for one message: its step's context (the stored `draft` may
    be left out, None, for a step inside a session on USSD or voice: no keyword, no
    restart, not resuming, the step does not read it), its text, session and receipts
    (as stored: a turn reads their pending keyword)."""

    text: str
    session: Session | None
    receipts: Receipts


def tracking_question(flow: Flow) -> str | None:
    """The question whose answer is looked up as a case reference ("follow my request")."""
    for state in flow.states.values():
        after = flow.states.get(state.to or "")
        if (state.kind is StateKind.QUESTION and after is not None
                and after.action is Action.LOOKUP_CASE):
            return state.name
    return None


def language_of(flow: Flow, session: Session | None, profile: Profile | None) -> str:
    if session is not None:
        return session.language
    if profile is not None and profile.language in flow.languages:
        return profile.language
    return flow.default_language


def say(flow: Flow, name: str, language: str, channel: Channel) -> Reply:
    """A text of the flow on its own (opt-out, erasure…), filled and spelled for the channel."""
    filled = fill(flow, flow.text(name, language), language, {}, {})
    return Reply(text=spelled(flow, language, channel, filled))


def turn(compiled: CompiledFlow, inbound: Inbound, now: datetime, limits: Limits) -> Turn:
    """What one message does."""
    if inbound.channel is Channel.SMS:
        keyworded = _sms_turn(compiled, inbound, now, limits)
        if keyworded is not None:
            return keyworded
    return _step(compiled, inbound, now, limits)


def _sms_turn(compiled: CompiledFlow, inbound: Inbound, now: datetime,
              limits: Limits) -> Turn | None:
    """An SMS keyword, a pending confirmation, or an opted-out phone's silence; else None."""
    flow = compiled.flow
    language = language_of(flow, inbound.session, inbound.profile)
    match = recognise(inbound.text)
    keyword = match.keyword if match is not None else None
    opted_out = inbound.profile is not None and inbound.profile.opted_out
    alerts = keyword is None and is_alert_keyword(flow, inbound.text)
    if inbound.receipts.pending == PENDING_ERASE and keyword is None:
        entry = validators.clean(inbound.text)
        if entry == CONFIRM:
            return Turn(reply=say(flow, "erased", language, inbound.channel), erase=True)
        if entry == CANCEL:
            return Turn(reply=say(flow, "erase_cancelled", language, inbound.channel),
                        keep_session=True)
    if opted_out:
        # An opted-out phone hears nothing but what it asks for itself.
        match keyword:
            case Keyword.START:
                return _opt_in(flow, inbound)
            case Keyword.ERASE:
                return _erase_asked(flow, language, inbound.channel)
            case Keyword.EMERGENCY:
                return Turn(reply=say(flow, "emergency_numbers", language, inbound.channel),
                            keep_session=True)
            case None if alerts and ALERTS_AFTER_STOP in flow.texts:
                return Turn(reply=say(flow, ALERTS_AFTER_STOP, language, inbound.channel),
                            keep_session=True)
            case _:
                return Turn(reply=SILENCE, keep_session=True, silent=True)
    if match is not None:
        return _keyword(compiled, inbound, match, now, limits)
    if alerts:
        return _alerts(compiled, inbound, language, limits)
    return None


def is_alert_keyword(flow: Flow, text: str) -> bool:
    """Whether a whole message is one of the flow's alert keywords (ALERTES…), whatever
    its case and accents."""
    stripped = text.strip().rstrip(".!? ")
    if not flow.alert_keywords or not stripped[:1].isalpha() or len(stripped) > MAX_ALERT_KEYWORD:
        return False
    folded = fold(stripped)
    return any(folded == fold(word) for word in flow.alert_keywords)


def _alerts(compiled: CompiledFlow, inbound: Inbound, language: str, limits: Limits) -> Turn:
    """The flow's alert subscription, from its first screen (its consent)."""
    flow = compiled.flow
    assert flow.alerts is not None
    session = Session(state=compiled.jump(flow.alerts), language=language, history=[flow.home])
    return Turn(reply=render(flow, session, limits), session=session)


def _erase_asked(flow: Flow, language: str, channel: Channel) -> Turn:
    return Turn(reply=say(flow, "erase_confirm", language, channel), keep_session=True,
                pending=PENDING_ERASE)


def _step(compiled: CompiledFlow, inbound: Inbound, now: datetime, limits: Limits,
          *, restart: bool | None = None) -> Turn:
    context = inbound if restart is None else replace(inbound, restart=restart)
    result = step(compiled, inbound.session, inbound.text, now, context, limits)
    return Turn(reply=result.reply, session=result.session, effects=result.effects)


def _keyword(compiled: CompiledFlow, inbound: Inbound, match: KeywordMatch, now: datetime,
             limits: Limits) -> Turn:
    flow = compiled.flow
    language = language_of(flow, inbound.session, inbound.profile)
    match match.keyword:
        case Keyword.STOP:
            # Every outbound message stops, alerts too: their subscription ends (a later
            # START does not renew it).
            profile = inbound.profile or Profile(language=language)
            return Turn(reply=say(flow, "opted_out", language, inbound.channel),
                        profile=replace(profile, opted_out=True),
                        effects=(UnsubscribeAlerts(),))
        case Keyword.ERASE:
            return _erase_asked(flow, language, inbound.channel)
        case Keyword.TRACK:
            return _track(compiled, inbound, match.argument, language, now, limits)
        case Keyword.EMERGENCY:
            return _emergency(compiled, inbound, language, limits)
        case Keyword.MENU | Keyword.START:
            # START from a phone that never opted out means "begin": the menu, no "welcome back".
            return _step(compiled, inbound, now, limits, restart=True)


def _emergency(compiled: CompiledFlow, inbound: Inbound, language: str, limits: Limits) -> Turn:
    """The flow's emergency screen at once, whatever the conversation was doing."""
    flow = compiled.flow
    target = flow.emergency if flow.emergency is not None and flow.emergency in flow.states \
        else flow.home
    session = Session(state=compiled.jump(target), language=language,
                      history=[flow.home] if target != flow.home else [])
    return Turn(reply=render(flow, session, limits), session=session)


def _opt_in(flow: Flow, inbound: Inbound) -> Turn:
    language = language_of(flow, inbound.session, inbound.profile)
    profile = inbound.profile
    changed = replace(profile, opted_out=False) if profile is not None else None
    return Turn(reply=say(flow, "opted_in", language, inbound.channel), keep_session=True,
                profile=changed if changed != profile else None)


def _track(compiled: CompiledFlow, inbound: Inbound, reference: str, language: str,
           now: datetime, limits: Limits) -> Turn:
    """`SUIVI <ref>`: the flow's own "follow my request", entered at its question."""
    flow = compiled.flow
    question = tracking_question(flow)
    if question is None:
        return _step(compiled, inbound, now, limits, restart=True)
    session = Session(state=compiled.jump(question), language=language, history=[flow.home])
    if not reference:
        return Turn(reply=render(flow, session, limits), session=session)
    tracked = replace(inbound, session=session, text=reference)
    return _step(compiled, tracked, now, limits, restart=False)
