"""Where rules live (docs/architecture.md, "How this differs"): the store knows no case or
operator rule, and gateways reach storage only through the conversation loop or the case
service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[2] / "bot"
RULES = ("bot.cases.lifecycle", "bot.cases.service", "bot.cases.migrant", "bot.admin.operators")


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted((BOT / "store").glob("*.py")), ids=lambda p: p.name)
def test_the_store_imports_no_rule(path: Path) -> None:
    assert not {name for name in imported(path) if name.startswith(RULES)}


@pytest.mark.parametrize("path", sorted((BOT / "channels").glob("*.py")), ids=lambda p: p.name)
def test_gateways_reach_no_store_module(path: Path) -> None:
    assert not {name for name in imported(path) if name.startswith("bot.store")}


@pytest.mark.parametrize("path", sorted((BOT / "engine").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_and_its_planner_reach_no_store_no_clock_no_randomness(path: Path) -> None:
    """Pure: the conversation passes the state, the time and references drawn for it."""
    names = imported(path)
    assert not {name for name in names if name.startswith(("bot.store", "bot.conversation"))}
    assert not names & {"secrets", "random", "time", "asyncio", "redis"}
    assert ".now(" not in path.read_text()
