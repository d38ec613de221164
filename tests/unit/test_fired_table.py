"""The step's table of transitions says exactly what the shared machine says."""

from __future__ import annotations

import pytest
from transitions import MachineError

from bot.flows.compiler import CompiledFlow
from tests.factories import default_flow, mini


@pytest.mark.parametrize("compiled", [default_flow(), mini()], ids=["default", "mini"])
def test_every_state_and_trigger_fires_as_on_the_machine(compiled: CompiledFlow) -> None:
    triggers = [*compiled.machine.events, "no-such-trigger"]
    checked = 0
    for state in compiled.flow.states:
        for trigger in triggers:
            try:
                expected: str | type[Exception] = compiled.fire_on_machine(state, trigger)
            except (MachineError, KeyError) as error:
                expected = type(error)
            try:
                got: str | type[Exception] = compiled.fire(state, trigger)
            except (MachineError, KeyError) as error:
                got = type(error)
            assert got == expected, (state, trigger)
            checked += 1
    assert checked == len(compiled.flow.states) * len(triggers)
    assert compiled.fired  # the table is used, not only the machine
