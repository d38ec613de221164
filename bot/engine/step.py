"""`step`: one input applied to one session, purely.

Input in, (session, reply, effects) out: no Redis, no clock (time is passed
in), no randomness (ids are passed in through the context).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.engine import validators
from bot.engine.followup_step import finish_followup
from bot.engine.render import Limits, Reply, render
from bot.engine.session import (
    CreateCase,
    DiscardDraft,
    Effect,
    NeedOpenRequest,
    SaveDraft,
    Session,
    SetLanguage,
    StepContext,
    SubscribeAlerts,
    WithdrawCase,
)
from bot.flows.compiler import TRIGGER_HOME, CompiledFlow
from bot.flows.model import (
    NAV_BACK,
    NAV_HOME,
    NAV_MORE,
    TRIGGER_ANSWER,
    TRIGGER_DONE,
    Action,
    AlertsRoute,
    LookupRoute,
    OpenRequestRoute,
    State,
    StateKind,
)
from bot.types import Channel

MAX_STRIKES = 3
MAX_HISTORY = 30
MAX_ACTIONS_IN_A_ROW = 16
RESUME_CONTINUE = "1"
RESUME_RESTART = "2"


@dataclass
class StepResult:
    session: Session
    reply: Reply
    effects: list[Effect] = field(default_factory=list)


def new_session(compiled: CompiledFlow, context: StepContext) -> Session:
    flow = compiled.flow
    opening = context.opening
    if opening is not None and opening.state in flow.states:
        language = opening.language if opening.language in flow.languages \
            else flow.default_language
        return Session(state=compiled.jump(opening.state), language=language,
                       answers=dict(opening.answers))
    profile = context.profile
    language = flow.default_language
    if profile is not None and profile.language in flow.languages:
        language = profile.language
    first_contact = profile is None and context.draft is None
    first_start = flow.first_start_on.get(context.channel, flow.first_start)
    start = first_start if first_contact and first_start else flow.start
    session = Session(state=start, language=language)
    if context.draft is not None:
        session.resuming = True
        session.language = context.draft.language
    return session


def step(compiled: CompiledFlow, session: Session | None, text: str, now: datetime,
         context: StepContext, limits: Limits) -> StepResult:
    """Apply one input. A missing session (or `context.restart`) starts a conversation."""
    if session is None or context.restart:
        fresh = new_session(compiled, context)
        return StepResult(session=fresh, reply=render(compiled.flow, fresh, limits))
    session = session.copy()  # the caller's session stays as it was
    session.steps += 1
    shown_hint, session.hint = session.hint, None
    effects: list[Effect] = []
    entry = validators.clean(text)
    if session.resuming:
        _resume(compiled, session, entry, context, effects)
    elif entry == NAV_HOME:
        _go_home(compiled, session)
    elif entry == NAV_MORE:
        # Paging through the screen just shown (its hint included) is never a wrong answer.
        session.hint = shown_hint
        if session.page + 1 < render(compiled.flow, session, limits).pages:
            session.page += 1
        else:
            _strike(compiled, session, "invalid")
    elif entry == NAV_BACK and (session.page > 0 or session.history):
        session.strikes = 0  # a move that worked: earlier slips are forgiven
        if session.page > 0:
            session.hint = shown_hint
            session.page -= 1
        else:
            session.state = compiled.jump(session.history.pop())
    else:
        _answer(compiled, session, text, entry, now, context, effects)
    _keep_draft(compiled, session, effects)
    return StepResult(session=session, reply=render(compiled.flow, session, limits),
                      effects=effects)


def _answer(compiled: CompiledFlow, session: Session, text: str, entry: str, now: datetime,
            context: StepContext, effects: list[Effect]) -> None:
    """`entry`: `text` cleaned (a menu's key)."""
    state = compiled.flow.states[session.state]
    if state.kind is StateKind.MENU:
        option = state.option(entry)
        if option is None:
            _strike(compiled, session, "invalid")
            return
        if state.save:  # an option with no value (Skip) keeps no answer, not even an earlier one
            if option.value is None:
                session.answers.pop(state.save, None)
            else:
                session.answers[state.save] = option.value
        _advance(compiled, session, option.key, now, context, effects)
    elif state.kind is StateKind.QUESTION:
        check = validators.check(state.validate or "text", text,
                                 on_a_call=context.channel is Channel.VOICE)
        if not check.ok:
            _strike(compiled, session, check.hint)
            return
        if state.save:
            if check.value is None:
                session.answers.pop(state.save, None)
            else:
                session.answers[state.save] = check.value
        _advance(compiled, session, TRIGGER_ANSWER, now, context, effects)
    else:
        _strike(compiled, session, "invalid")


def _advance(compiled: CompiledFlow, session: Session, trigger: str, now: datetime,
             context: StepContext, effects: list[Effect]) -> None:
    session.history.append(session.state)  # the step's own list (`Session.copy`)
    del session.history[:-MAX_HISTORY]
    session.strikes = 0
    session.page = 0
    session.state = compiled.fire(session.state, trigger)
    for _ in range(MAX_ACTIONS_IN_A_ROW):
        state = compiled.flow.states[session.state]
        if state.kind is not StateKind.ACTION:
            break
        session.state = compiled.fire(state.name, _act(compiled, state, session, now, context,
                                                       effects))
    if session.state in session.history:
        # Back at a screen seen before (a topic list, after its last page): `0` now
        # goes where it went from that screen, not into the pages just read.
        session.history = session.history[:session.history.index(session.state)]


def _act(compiled: CompiledFlow, state: State, session: Session, now: datetime,
         context: StepContext, effects: list[Effect]) -> str:
    """Carry out an action state; the trigger that leaves it."""
    flow = compiled.flow
    match state.action:
        case Action.SET_LANGUAGE:
            language = state.params.get("language", "")
            if language in flow.languages:
                session.language = language
                effects.append(SetLanguage(language))
        case Action.GIVE_CONSENT:
            session.answers = {}
            session.draft_id = context.new_id or f"d{now.timestamp():.6f}"
            session.consent_at = now.isoformat(timespec="seconds")  # to the second (memory)
        case Action.REFUSE_CONSENT | Action.DISCARD_DRAFT:
            session.drafting = True  # refusing or discarding always clears the stored draft
            _forget_draft(session, effects)
        case Action.CREATE_CASE:
            effects.append(CreateCase(
                kind=state.params.get("kind", ""),
                language=session.language,
                answers=dict(session.answers),
                consent_at=session.consent_at,
                text_version=flow.version,
                idempotency_key=session.draft_id or context.new_id,
            ))
            _forget_draft(session, effects)
            session.history = []
        case Action.LOOKUP_CASE:
            reference = session.answers.pop("reference", "")
            view = context.lookups.get(reference)
            session.vars["reference"] = reference
            if view is None:
                return LookupRoute.MISSING
            session.vars["status"] = view.status
            if view.is_callers and view.can_withdraw:
                return LookupRoute.MINE
            return LookupRoute.FOUND
        case Action.WITHDRAW_CASE:
            effects.append(WithdrawCase(session.vars.get("reference", "")))
        case Action.SET_ANSWER:
            session.answers.update(state.params)
        case Action.FINISH_FOLLOWUP:
            return finish_followup(compiled, state, session, now, effects)
        case Action.FIND_OPEN_REQUEST:
            if not context.open_request_known:
                effects.append(NeedOpenRequest())
                return OpenRequestRoute.NONE
            found = context.open_request
            if found is None:
                return OpenRequestRoute.NONE
            session.vars["reference"] = found.reference
            session.vars["status"] = found.status
            return OpenRequestRoute.OPEN
        case Action.BY_CHANNEL:
            return str(context.channel)
        case Action.SUBSCRIBE_ALERTS:
            country = session.answers.pop(state.params.get("country", ""), "")
            if context.profile is not None and context.profile.opted_out:
                return AlertsRoute.OPTED_OUT  # STOP holds: no SMS, so no subscription
            effects.append(SubscribeAlerts(country=country, language=session.language,
                                           text_version=flow.version))
            return AlertsRoute.DONE
    return TRIGGER_DONE


def _forget_draft(session: Session, effects: list[Effect]) -> None:
    """Drop this conversation's answers, and its stored draft if it made one.

    A call-back request made while an older return request waits as a draft
    leaves that draft alone.
    """
    if session.drafting:
        effects.append(DiscardDraft())
    session.answers = {}
    session.draft_id = None
    session.consent_at = None
    session.drafting = False


def _keep_draft(compiled: CompiledFlow, session: Session, effects: list[Effect]) -> None:
    if session.draft_id is None or session.resuming:
        return
    if not compiled.flow.states[session.state].draft:
        return
    session.drafting = True
    effects.append(SaveDraft())


def _resume(compiled: CompiledFlow, session: Session, entry: str, context: StepContext,
            effects: list[Effect]) -> None:
    draft = context.draft
    if entry == RESUME_CONTINUE and draft is not None and draft.state in compiled.flow.states:
        session.resuming = False
        session.state = compiled.jump(draft.state)
        session.answers = dict(draft.answers)
        session.history = list(draft.history)
        session.draft_id = draft.draft_id
        session.consent_at = draft.consent_at
        session.language = draft.language
        session.drafting = True
    elif entry in (RESUME_RESTART, NAV_HOME) or draft is None:
        session.resuming = False
        effects.append(DiscardDraft())
        _go_home(compiled, session)
    else:
        session.hint = "invalid"


def _go_home(compiled: CompiledFlow, session: Session) -> None:
    session.state = compiled.fire(session.state, TRIGGER_HOME)
    session.history = []
    session.page = 0
    session.strikes = 0
    # Leaving a return request half-way keeps its stored draft for the next contact,
    # but this conversation starts clean.
    session.answers = {}
    session.draft_id = None
    session.consent_at = None
    session.drafting = False


STRIKES_HINT = "too_many_tries"
"""Said on the home menu after three strikes (not the hint of the screen left behind)."""


def _strike(compiled: CompiledFlow, session: Session, hint: str) -> None:
    session.strikes += 1
    session.hint = hint
    if session.strikes >= MAX_STRIKES:
        _go_home(compiled, session)
        session.hint = STRIKES_HINT if STRIKES_HINT in compiled.flow.texts else None
