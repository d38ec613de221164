"""What a USSD hop adds: the gateway sends every input of its session so far.

Africa's Talking posts `text` = all inputs joined by `*` (empty on the first
request). The new input is what follows the history already applied. A hop is
never allowed to derail the session: a first request that already carries
inputs (a direct dial such as `*384*55*2#` gives `2`) starts the conversation
and takes them as its history; a replayed older hop answers the current
screen again; a history that no longer extends the applied one (a gateway that
sends only the latest input) is read from its last input.
"""

from __future__ import annotations

from dataclasses import dataclass

SEPARATOR = "*"


@dataclass
class HopInput:
    restart: bool = False
    """The first hop of a gateway session: start a conversation."""
    text: str = ""
    """The new input to apply."""
    replay: bool = False
    """Nothing new: answer the last screen again without advancing."""


def new_input(*, seen_session: str, applied: str, session_id: str, history: str) -> HopInput:
    """The input a hop brings, given the gateway session and history applied before it."""
    if session_id != seen_session:
        return HopInput(restart=True)
    if not history or history == applied or applied.startswith(history + SEPARATOR):
        return HopInput(replay=True)
    if not applied:
        return HopInput(text=history)
    if history.startswith(applied + SEPARATOR):
        return HopInput(text=history[len(applied) + 1:])
    return HopInput(text=history.rsplit(SEPARATOR, 1)[-1])
