"""The status lifecycle of a case: one shared `transitions` machine, built once.

new → contacted → in_progress → referred | return_arranged → returned → closed;
withdrawn from any status before returned; closed from any status.
"""

from __future__ import annotations

from types import MappingProxyType

from transitions import Machine, MachineError

from bot.cases.model import CaseStatus
from bot.errors import IllegalTransition

_FORWARD: dict[CaseStatus, tuple[CaseStatus, ...]] = {
    CaseStatus.NEW: (CaseStatus.CONTACTED,),
    CaseStatus.CONTACTED: (CaseStatus.IN_PROGRESS,),
    CaseStatus.IN_PROGRESS: (CaseStatus.REFERRED, CaseStatus.RETURN_ARRANGED),
    CaseStatus.REFERRED: (CaseStatus.RETURNED,),
    CaseStatus.RETURN_ARRANGED: (CaseStatus.RETURNED,),
    CaseStatus.RETURNED: (),
    CaseStatus.CLOSED: (),
    CaseStatus.WITHDRAWN: (),
}
_BEFORE_RETURNED = (
    CaseStatus.NEW,
    CaseStatus.CONTACTED,
    CaseStatus.IN_PROGRESS,
    CaseStatus.REFERRED,
    CaseStatus.RETURN_ARRANGED,
)


def _build_machine() -> Machine:
    transitions: list[dict[str, object]] = [
        {"trigger": str(dest), "source": str(source), "dest": str(dest)}
        for source, dests in _FORWARD.items()
        for dest in dests
    ]
    transitions.append(
        {
            "trigger": str(CaseStatus.WITHDRAWN),
            "source": [str(s) for s in _BEFORE_RETURNED],
            "dest": str(CaseStatus.WITHDRAWN),
        }
    )
    transitions.append(
        {
            "trigger": str(CaseStatus.CLOSED),
            "source": [str(s) for s in CaseStatus if s is not CaseStatus.CLOSED],
            "dest": str(CaseStatus.CLOSED),
        }
    )
    return Machine(
        model=None,
        states=[str(s) for s in CaseStatus],
        transitions=transitions,
        initial=str(CaseStatus.NEW),
        auto_transitions=False,
        send_event=False,
    )


MACHINE = _build_machine()


def _allowed_from(status: CaseStatus) -> frozenset[CaseStatus]:
    return frozenset(
        CaseStatus(str(transition.dest))
        for event in MACHINE.events.values()
        for transition in event.transitions.get(str(status), ())
    )


ALLOWED_NEXT: MappingProxyType[CaseStatus, frozenset[CaseStatus]] = MappingProxyType(
    {status: _allowed_from(status) for status in CaseStatus}
)


def allowed_next(status: CaseStatus) -> list[CaseStatus]:
    """The statuses a case in `status` may move to, in lifecycle order."""
    return [s for s in CaseStatus if s in ALLOWED_NEXT[status]]


def sources_of(target: CaseStatus) -> list[CaseStatus]:
    """The statuses from which a case may move to `target`."""
    return [s for s in CaseStatus if target in ALLOWED_NEXT[s]]


class _StatusHolder:
    """The light model object the shared machine fires its triggers on."""

    def __init__(self, status: CaseStatus) -> None:
        self.state = str(status)


def next_status(current: CaseStatus, target: CaseStatus) -> CaseStatus:
    """`target` if the lifecycle allows it from `current`; else IllegalTransition."""
    holder = _StatusHolder(current)
    try:
        MACHINE.events[str(target)].trigger(holder)
    except (MachineError, KeyError) as exc:
        raise IllegalTransition(current, allowed_next(current)) from exc
    return CaseStatus(holder.state)
