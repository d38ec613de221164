"""The lint of a flow's follow-up survey (docs/spec.md §11): `helpline flows check` runs it.

A flow with `followup:` must open a survey that asks at least two scored
questions on each dimension of reintegration, then reaches `finish_followup`;
every scored question saves an answer, every option of one has a value, and
scores and alarms sit only on the survey's questions.
"""

from __future__ import annotations

from bot.engine.survey import questions, survey_states
from bot.flows.model import Action, Dimension, Flow, FollowupRoute, State, StateKind

MIN_QUESTIONS_PER_DIMENSION = 2
CALL_PARAMETER = "call"


def _where(flow: Flow, state: State) -> str:
    return f"{flow.path}:{state.line}: state '{state.name}'"


def check_survey(flow: Flow) -> list[str]:
    """Every problem of the flow's survey, one line each."""
    problems: list[str] = []
    inside = survey_states(flow)
    for state in flow.states.values():
        where = _where(flow, state)
        scored = any(o.score is not None or o.alarm for o in state.options)
        if state.dimension is not None:
            if state.kind is not StateKind.MENU or not state.save:
                problems.append(f"{where}: a survey question (`dimension`) is a menu with "
                                "`save`")
            if any(option.value is None for option in state.options):
                problems.append(f"{where}: every option of a survey question needs a `value`")
            if not any(option.score is not None for option in state.options):
                problems.append(f"{where}: a survey question needs options with a `score`")
        elif scored:
            problems.append(f"{where}: `score` and `alarm` belong on a survey question "
                            "(a state with `dimension`)")
        if (state.dimension is not None or state.action is Action.FINISH_FOLLOWUP) \
                and state.name not in inside:
            problems.append(f"{where}: part of the survey, but not reachable from "
                            f"`followup: {flow.followup}`")
    if flow.followup is None:
        return problems
    if flow.followup not in flow.states:
        return [*problems, f"{flow.path}: followup '{flow.followup}' is not a state"]
    counted = {dimension: 0 for dimension in Dimension}
    for state in questions(flow):
        assert state.dimension is not None
        counted[state.dimension] += 1
    for dimension, count in counted.items():
        if count < MIN_QUESTIONS_PER_DIMENSION:
            problems.append(f"{flow.path}: the survey asks {count} question(s) on {dimension}"
                            f" (at least {MIN_QUESTIONS_PER_DIMENSION})")
    finishes = [flow.states[name] for name in sorted(inside)
                if flow.states[name].action is Action.FINISH_FOLLOWUP]
    if not finishes:
        problems.append(f"{flow.path}: the survey never reaches `action: finish_followup`")
    saved = {state.save for state in flow.states.values() if state.name in inside and state.save}
    for state in finishes:
        missing = {route.value for route in FollowupRoute} - set(state.routes)
        if missing:
            problems.append(f"{_where(flow, state)}: finish_followup needs `to` for "
                            f"{', '.join(sorted(missing))}")
        if state.params.get(CALL_PARAMETER) not in saved:
            problems.append(f"{_where(flow, state)}: finish_followup needs `with: {{call: "
                            "<answer>}` naming the survey's yes/no answer to a call")
    return problems
