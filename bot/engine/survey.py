"""A follow-up check-in's survey (docs/spec.md §11): which states it is made of, and its scores.

Pure. The flow says everything: the state a check-in opens (`followup:`), the
dimension each question scores (`dimension:`), what each answer scores and
whether it is an alarm (`score:`, `alarm:` on its options). A dimension's score
is the mean of its answered questions' scores (a question skipped or answered
with an option that has no score does not count); the composite is the mean
of the dimensions that have a score. How to read them: docs/followup.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from bot.flows.model import Dimension, Flow, State, StateKind

FOLLOWUP_ANSWER = "followup"
"""The answer a check-in's session carries from its first screen: which check-in it is
(`<reference>.<id>`)."""


@lru_cache(maxsize=8)
def survey_states(flow: Flow) -> frozenset[str]:
    """The states a check-in can lead to from `flow.followup` (not the menus it may leave
    for: `home` and `start` are not part of it)."""
    if flow.followup is None or flow.followup not in flow.states:
        return frozenset()
    outside = {flow.home, flow.start}
    seen = {flow.followup}
    queue = deque([flow.followup])
    while queue:
        for target in flow.states[queue.popleft()].targets():
            if target in flow.states and target not in seen and target not in outside:
                seen.add(target)
                queue.append(target)
    return frozenset(seen)


def questions(flow: Flow) -> list[State]:
    """The survey's scored questions, in the flow's order."""
    inside = survey_states(flow)
    return [state for state in flow.states.values()
            if state.name in inside and state.dimension is not None
            and state.kind is StateKind.MENU and state.save]


@dataclass(frozen=True)
class Scores:
    """Per dimension from 0 (struggling) to 1 (doing well), None when nothing was answered."""

    economic: float | None
    social: float | None
    psychosocial: float | None
    composite: float | None
    alarm: bool
    """An answer the flow marks as an alarm was given (in danger, deep distress)."""
    answered: int
    """How many scored questions were answered."""

    def as_dict(self) -> dict[str, float | None]:
        return {"economic": self.economic, "social": self.social,
                "psychosocial": self.psychosocial, "composite": self.composite}


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def score(flow: Flow, answers: Mapping[str, str]) -> Scores:
    """The scores of a survey's answers (values saved by its questions)."""
    by_dimension: dict[Dimension, list[float]] = {dimension: [] for dimension in Dimension}
    alarm = False
    answered = 0
    for state in questions(flow):
        assert state.save is not None and state.dimension is not None
        given = answers.get(state.save)
        option = next((o for o in state.options if o.value is not None and o.value == given),
                      None)
        if option is None:
            continue
        alarm = alarm or option.alarm
        if option.score is not None:
            by_dimension[state.dimension].append(option.score)
            answered += 1
    means = {dimension: _mean(values) for dimension, values in by_dimension.items()}
    composite = _mean([value for value in means.values() if value is not None])
    return Scores(economic=means[Dimension.ECONOMIC], social=means[Dimension.SOCIAL],
                  psychosocial=means[Dimension.PSYCHOSOCIAL], composite=composite,
                  alarm=alarm, answered=answered)
