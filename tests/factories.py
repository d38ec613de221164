"""Test helpers: flows, broken copies of flows, a driver for the pure engine."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bot.engine.render import Limits, Reply
from bot.engine.session import Effect, Session, StepContext
from bot.engine.step import step
from bot.flows.checked import load_checked
from bot.flows.compiler import CompiledFlow
from bot.settings import DEFAULT_FLOW
from bot.types import Channel

MINI_FLOW = Path(__file__).parent / "flows" / "mini.yaml"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def mini() -> CompiledFlow:
    return load_checked(MINI_FLOW)


def default_flow() -> CompiledFlow:
    return load_checked(DEFAULT_FLOW)


def broken_copy(tmp_path: Path, source: Path, mutate: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of a flow (and its contacts) with `mutate` applied to its YAML data."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    mutate(data)
    target = tmp_path / source.name
    target.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    contacts = data.get("contacts")
    if contacts:
        (tmp_path / contacts).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source.parent / contacts, tmp_path / contacts)
    return target


class Phone:
    """Drives the pure engine as one phone would, keeping the session between inputs."""

    def __init__(self, compiled: CompiledFlow, channel: Channel = Channel.USSD,
                 context: StepContext | None = None) -> None:
        self.compiled = compiled
        self.limits = Limits(channel)
        self.context = context or StepContext(channel=channel)
        self.session: Session | None = None
        self.effects: list[Effect] = []
        self.reply = self.send("")

    def send(self, text: str, **context: Any) -> Reply:
        ctx = StepContext(**{**self.context.__dict__, **context})
        result = step(self.compiled, self.session, text, NOW, ctx, self.limits)
        self.session = result.session
        self.effects = result.effects
        self.reply = result.reply
        return result.reply
