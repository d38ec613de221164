"""Cost of one engine step on the compiled default flow, against a Machine built per message.

    python bench/engine.py [--rounds N]

Prints medians (µs) and ratios. Goals (issue 2): a step ≤ 50 µs and the shared
machine ≥ 50× cheaper than the naive way: a `Machine(model=session, …)` built
for each message with transitions' defaults (auto transitions on). It also
prints the ratio against the leanest possible rebuild (the same machine as
ours, `model=None`, `auto_transitions=False`, built per message), which is the
harder bar.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from transitions import Machine

from bot.engine.render import Limits
from bot.engine.session import Profile, Session, StepContext
from bot.engine.step import step
from bot.flows.checked import load_checked
from bot.flows.compiler import CompiledFlow, compile_flow, transitions_of
from bot.settings import DEFAULT_FLOW
from bot.types import Channel

NOW = datetime(2026, 11, 29, tzinfo=UTC)
# A return request walked on USSD: menus, questions, yes/no answers, the summary.
WALK = ["2", "1", "Awa Diarra", "Mali", "Niger", "Agadez", "2", "2", "2", "1", "2", "1", "1",
        "1"]


def walk(compiled_for_message: Callable[[], CompiledFlow]) -> list[float]:
    """Per-step costs (µs) of one walk, each message using the flow it is given."""
    context = StepContext(channel=Channel.USSD, profile=Profile("fr"), new_id="bench")
    limits = Limits(Channel.USSD)
    session: Session | None = step(compiled_for_message(), None, "", NOW, context,
                                   limits).session
    costs = []
    for text in WALK:
        started = time.perf_counter_ns()
        result = step(compiled_for_message(), session, text, NOW, context, limits)
        costs.append((time.perf_counter_ns() - started) / 1000)
        session = result.session
    return costs


class _Model:
    state = ""


def naive(shared: CompiledFlow) -> CompiledFlow:
    """What naive code does per message: a Machine bound to the session, defaults on."""
    flow = shared.flow
    machine = Machine(model=_Model(), states=list(flow.states),
                      transitions=transitions_of(flow), initial=flow.start)
    return CompiledFlow(flow=flow, machine=machine)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    shared = load_checked(DEFAULT_FLOW)
    shared_costs: list[float] = []
    for _ in range(args.rounds):
        shared_costs.extend(walk(lambda: shared))
    lean_costs: list[float] = []
    for _ in range(max(args.rounds // 30, 3)):
        lean_costs.extend(walk(lambda: compile_flow(shared.flow)))
    naive_costs: list[float] = []
    for _ in range(3):
        naive_costs.extend(walk(lambda: naive(shared)))
    shared_median = statistics.median(shared_costs)
    lean_median = statistics.median(lean_costs)
    naive_median = statistics.median(naive_costs)
    print(f"flow: {DEFAULT_FLOW.name}, {len(shared.flow.states)} states")
    print(f"shared machine              median step: {shared_median:8.1f} µs "
          f"(p99 {statistics.quantiles(shared_costs, n=100)[98]:.1f} µs; goal ≤ 50)")
    print(f"naive Machine per message   median step: {naive_median:8.1f} µs  "
          f"ratio {naive_median / shared_median:.0f}× (goal ≥ 50×)")
    print(f"lean Machine per message    median step: {lean_median:8.1f} µs  "
          f"ratio {lean_median / shared_median:.0f}×")


if __name__ == "__main__":
    main()
