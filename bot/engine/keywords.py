"""SMS keywords (SPEC §5), recognised whatever the case and accents.

A keyword is a whole message: `stop`, `Arrêt.` and ` DEBUT ` are keywords,
"stop the bus" is not. `SUIVI` alone asks for a reference; `SUIVI 1234-5678`
carries it. Bambara speakers use the same words: the bm texts of the flow tell
them to send `DEBUT` and `MENU`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Keyword(StrEnum):
    MENU = "menu"
    """Start the conversation again from the main menu."""
    STOP = "stop"
    """Opt out: confirmed once, then silence and no outbound SMS."""
    START = "start"
    """Opt back in."""
    TRACK = "track"
    """Follow a request: its status, from the reference that follows."""
    ERASE = "erase"
    """Erase the phone's data, once confirmed."""


WORDS: dict[str, Keyword] = {
    "MENU": Keyword.MENU,
    "AIDE": Keyword.MENU,
    "HELP": Keyword.MENU,
    "STOP": Keyword.STOP,
    "ARRET": Keyword.STOP,
    "START": Keyword.START,
    "DEBUT": Keyword.START,
    "SUIVI": Keyword.TRACK,
    "EFFACER": Keyword.ERASE,
    "DELETE": Keyword.ERASE,
}
TAKES_ARGUMENT = frozenset({Keyword.TRACK})
MAX_KEYWORD_MESSAGE = 64
"""Longer messages are conversation, never keywords (and are not normalised)."""

_SHAPE = re.compile(r"^([A-Z]+)(?:[\s:#.,;!-]+(.*?))?[\s.!?]*$", re.DOTALL)


@dataclass(frozen=True)
class KeywordMatch:
    keyword: Keyword
    argument: str = ""


def fold(text: str) -> str:
    """Upper case without accents: `Arrêt` → `ARRET`, `début` → `DEBUT`."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.upper()


def recognise(text: str) -> KeywordMatch | None:
    """The keyword a whole message is, or None."""
    stripped = text.strip()
    if not stripped or len(stripped) > MAX_KEYWORD_MESSAGE or stripped[0].isdigit():
        return None
    shape = _SHAPE.match(fold(stripped))
    if shape is None:
        return _glued(fold(stripped))
    word, argument = shape.group(1), (shape.group(2) or "").strip()
    keyword = WORDS.get(word)
    if keyword is None:
        return _glued(fold(stripped))
    if argument and keyword not in TAKES_ARGUMENT:
        return None
    return KeywordMatch(keyword, argument)


def _glued(folded: str) -> KeywordMatch | None:
    """`SUIVI12345678`: a reference typed straight after the keyword."""
    for word, keyword in WORDS.items():
        if keyword in TAKES_ARGUMENT and folded.startswith(word):
            rest = folded[len(word):].strip()
            if rest[:1].isdigit():
                return KeywordMatch(keyword, rest)
    return None
