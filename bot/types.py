"""Small shared value types."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def statically_frozen(cls: type[_T]) -> type[_T]:
    """A value class of the message road: frozen to the type checker (`mypy --strict`
    refuses any assignment to a field), a plain dataclass at run time, hashable as a
    frozen one is. A frozen dataclass's `__init__` sets each field through
    `object.__setattr__`: ~4.5k instructions a construction, and a hop builds about a
    dozen of these (`bench/hop_instructions.py`: 729k -> 670k a hop). Elsewhere, plain
    `@dataclass(frozen=True)`."""
    return dataclass(unsafe_hash=True)(cls)


class Channel(StrEnum):
    USSD = "ussd"
    SMS = "sms"
    VOICE = "voice"
