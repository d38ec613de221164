"""Compile a flow into one shared `transitions` machine, built once per process.

The machine holds no model (`model=None`): each step fires an event on a tiny
cursor object carrying only the current state name, as the pytransitions FAQ
recommends, so a message never builds a Machine or calls `add_model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transitions import Machine, MachineError

from bot.errors import FlowError
from bot.flows.model import TRIGGER_ANSWER, TRIGGER_DONE, Flow, StateKind

TRIGGER_HOME = "home"


class _Cursor:
    """The light model a trigger is fired on."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


@dataclass(frozen=True)
class CompiledFlow:
    flow: Flow
    machine: Machine
    fired: dict[tuple[str, str], str] = field(default_factory=dict, compare=False)
    """What the machine answered for every (state, trigger) it accepts, asked once when
    compiled (`fired_table`): a step looks it up rather than firing the machine again
    (the machine has no conditions or callbacks: its answer never changes). Anything
    not in it is asked of the machine, which raises as before."""

    def __post_init__(self) -> None:
        self.fired.update(fired_table(self.machine, list(self.flow.states)))

    def fire(self, state: str, trigger: str) -> str:
        """Fire `trigger` from `state` on the shared machine; the state it leads to."""
        known = self.fired.get((state, trigger))
        if known is not None:
            return known
        return self.fire_on_machine(state, trigger)

    def fire_on_machine(self, state: str, trigger: str) -> str:
        cursor = _Cursor(state)
        self.machine.events[trigger].trigger(cursor)
        return cursor.state

    def can_fire(self, state: str, trigger: str) -> bool:
        event = self.machine.events.get(trigger)
        return event is not None and state in event.transitions

    def jump(self, state: str) -> str:
        """Go straight to `state` (back navigation, resuming a draft)."""
        cursor = _Cursor(state)
        self.machine.set_state(state, cursor)
        return cursor.state


def fired_table(machine: Machine, states: list[str]) -> dict[tuple[str, str], str]:
    """The machine's answer to every trigger from every state, where it has one."""
    table: dict[tuple[str, str], str] = {}
    for trigger, event in machine.events.items():
        for state in states:
            if state not in event.transitions and "*" not in event.transitions:
                continue
            cursor = _Cursor(state)
            try:
                event.trigger(cursor)
            except MachineError:
                continue
            table[(state, trigger)] = cursor.state
    return table


def transitions_of(flow: Flow) -> list[dict[str, str]]:
    """Every transition of the flow, as `transitions` takes them."""
    found: list[dict[str, str]] = []

    def add(trigger: str, source: str, dest: str) -> None:
        found.append({"trigger": trigger, "source": source, "dest": dest})

    for state in flow.states.values():
        if state.kind is StateKind.MENU:
            for option in state.options:
                add(option.key, state.name, option.to)
        elif state.kind is StateKind.QUESTION and state.to:
            add(TRIGGER_ANSWER, state.name, state.to)
        elif state.kind is StateKind.ACTION:
            if state.to:
                add(TRIGGER_DONE, state.name, state.to)
            for route, target in state.routes.items():
                add(route, state.name, target)
    add(TRIGGER_HOME, "*", flow.home)
    return found


def build_machine(flow: Flow) -> Machine:
    return Machine(
        model=None,
        states=list(flow.states),
        transitions=transitions_of(flow),
        initial=flow.start,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )


def compile_flow(flow: Flow) -> CompiledFlow:
    """Build the flow's machine. The flow must have passed the lint."""
    try:
        return CompiledFlow(flow=flow, machine=build_machine(flow))
    except (ValueError, KeyError) as error:
        raise FlowError(f"{flow.path}: cannot compile: {error}") from error
