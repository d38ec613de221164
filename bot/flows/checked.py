"""Load, lint and compile a flow: what every process does once at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from bot.errors import FlowError
from bot.flows.compiler import CompiledFlow, compile_flow
from bot.flows.lint import Report, check
from bot.flows.loader import load_flow


def lint_flow(path: Path, *, ussd_max_chars: int = 182) -> Report:
    loaded = load_flow(path)
    return check(loaded.flow, loaded.problems, ussd_max_chars=ussd_max_chars)


@lru_cache(maxsize=8)
def load_checked(path: Path, ussd_max_chars: int = 182) -> CompiledFlow:
    """The compiled flow at `path`; FlowError listing every problem if the lint fails."""
    loaded = load_flow(path)
    report = check(loaded.flow, loaded.problems, ussd_max_chars=ussd_max_chars)
    if not report.ok:
        raise FlowError("\n".join(report.problems))
    return compile_flow(loaded.flow)
