"""The end of a follow-up check-in's survey, as a step's action (`finish_followup`).

Pure: the scores go to the check-in (`RecordFollowup`); "call me" creates a
`callback` case for the phone, naming the return case (`related`), with the
survey's answers for whoever calls back, urgent when an alarm answer was given
(`bot.cases.model.derive_priority`: `alarm`). The survey's answers leave the
session: the check-in keeps scores only.
"""

from __future__ import annotations

from datetime import datetime

from bot.engine import survey
from bot.engine.session import CreateCase, Effect, RecordFollowup, Session
from bot.flows.compiler import CompiledFlow
from bot.flows.model import FollowupRoute, State

YES, NO = "yes", "no"
CALL_PARAMETER = "call"
CALLBACK = "callback"
TOPIC = "followup"


def finish_followup(compiled: CompiledFlow, state: State, session: Session, now: datetime,
                    effects: list[Effect]) -> str:
    """Record the check-in's scores (and ask for a call-back); the route that follows."""
    flow = compiled.flow
    answers = dict(session.answers)
    token = answers.pop(survey.FOLLOWUP_ANSWER, "")
    scores = survey.score(flow, answers)
    wants_call = answers.get(state.params.get(CALL_PARAMETER, ""), "") == YES
    if token:
        effects.append(RecordFollowup(followup=token, scores=scores.as_dict(),
                                      alarm=scores.alarm, call=wants_call))
    if wants_call:
        effects.append(CreateCase(
            kind=CALLBACK,
            language=session.language,
            answers={**answers, "topic": TOPIC, "call_safe": YES,
                     "alarm": YES if scores.alarm else NO},
            consent_at=now.isoformat(timespec="seconds"),  # they asked to be called
            text_version=flow.version,
            idempotency_key=f"followup:{token}" if token else f"followup:{now.timestamp()}",
            related=token.partition(".")[0],
        ))
    session.answers = {}
    session.history = []
    return FollowupRoute.CALL if wants_call else FollowupRoute.THANKS
