"""A Mermaid diagram of a flow, from the compiled machine's own transitions."""

from __future__ import annotations

from bot.flows.compiler import TRIGGER_HOME, CompiledFlow


def _node(name: str) -> str:
    return name.replace("-", "_")


def mermaid(compiled: CompiledFlow) -> str:
    flow = compiled.flow
    lines = ["stateDiagram-v2", f"    [*] --> {_node(flow.first_start or flow.start)}"]
    lines.extend(_edges(compiled))
    return "\n".join(lines) + "\n"


def _edges(compiled: CompiledFlow) -> list[str]:
    flow = compiled.flow
    lines: list[str] = []
    for trigger, event in compiled.machine.events.items():
        if trigger == TRIGGER_HOME:
            continue
        for source, transitions in event.transitions.items():
            for transition in transitions:
                lines.append(f"    {_node(source)} --> {_node(str(transition.dest))}: {trigger}")
    for state in flow.states.values():
        if state.kind == "end":
            lines.append(f"    {_node(state.name)} --> [*]")
    return lines
