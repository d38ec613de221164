"""Named validators for free-text answers: clean the input or name the hint to show."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from bot.cases.references import parse_reference
from bot.engine import recordings
from bot.errors import InvalidReference
from bot.types import statically_frozen

SKIP = "#"
NAME_MAX = 60
TEXT_MAX = 160
_NAME = re.compile(r"^[^\W\d_]+(?:[ '\-][^\W\d_]+)*$")


@statically_frozen
class Checked:
    """`ok` with the value to store (None: nothing to store), or the hint text to show."""

    ok: bool
    value: str | None = None
    hint: str = "invalid"
    """The flow text that says what is expected (`invalid` where the flow has none)."""


def clean(raw: str) -> str:
    """Printable text only, spaces collapsed."""
    # isprintable: no character of category C (nor Z but the space): nothing to drop
    printable = raw if raw.isprintable() else "".join(
        ch for ch in raw if unicodedata.category(ch)[0] != "C")
    return " ".join(printable.split())


def name(raw: str) -> Checked:
    text = clean(raw)
    if 2 <= len(text) <= NAME_MAX and _NAME.match(text):
        return Checked(True, text)
    return Checked(False, hint="hint_name")


def place(raw: str) -> Checked:
    text = clean(raw)
    if 2 <= len(text) <= NAME_MAX and any(ch.isalpha() for ch in text):
        return Checked(True, text)
    return Checked(False, hint="hint_place")


def text(raw: str) -> Checked:
    cleaned = clean(raw)
    if 1 <= len(cleaned) <= TEXT_MAX:
        return Checked(True, cleaned)
    return Checked(False, hint="hint_text")


def optional(raw: str) -> Checked:
    if clean(raw) == SKIP:
        return Checked(True, None)
    return text(raw)


def reference(raw: str) -> Checked:
    try:
        return Checked(True, parse_reference(raw))
    except InvalidReference:
        return Checked(False, hint="check_number")


def _or_recording(check: Callable[[str], Checked]) -> Callable[[str], Checked]:
    """On a call, a free-text answer may also be a recording (said after a beep)."""

    def checked(raw: str) -> Checked:
        found = recordings.parse(raw)
        return Checked(True, found.as_answer()) if found is not None else check(raw)

    return checked


def _typed(check: Callable[[str], Checked], hint: str) -> Callable[[str], Checked]:
    """Typed (SMS, USSD), an answer is words: one that would read as a recording is refused
    with the question's `hint`, so that no typed answer is ever shown or kept as one."""

    def checked(raw: str) -> Checked:
        result = check(raw)
        value = result.value
        if value is not None and value.startswith(recordings.PREFIX) and recordings.parse(value):
            return Checked(False, hint=hint)
        return result

    return checked


VALIDATORS: dict[str, Callable[[str], Checked]] = {
    "name": _typed(name, "hint_name"),
    "place": _typed(place, "hint_place"),
    "text": _typed(text, "hint_text"),
    "optional": _typed(optional, "hint_text"),
    "reference": reference,
}
"""The checks of typed answers, by the name a flow's `validate:` gives."""
ON_A_CALL: dict[str, Callable[[str], Checked]] = {
    "name": _or_recording(name),
    "place": _or_recording(place),
    "text": _or_recording(text),
    "optional": _or_recording(optional),
    "reference": reference,
}
"""The same checks on a call: a free-text question also takes the recording a voice
gateway brought (bot/channels/calls.py: only from its own hosts)."""


def check(validate: str, raw: str, *, on_a_call: bool) -> Checked:
    """The answer `raw` to a question whose flow says `validate:`; a recording counts only
    `on_a_call` (the voice channel)."""
    return (ON_A_CALL if on_a_call else VALIDATORS)[validate](raw)
