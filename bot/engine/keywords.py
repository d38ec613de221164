"""SMS keywords (docs/spec.md §5), recognised whatever the case and accents.

A keyword is a whole message: `stop`, `Arrêt.` and ` DEBUT ` are keywords,
"stop the bus" is not. `SUIVI` alone asks for a reference; `SUIVI 1234-5678`
carries it. Bambara speakers use the same words (the bm texts of the flow tell
them to send `DEBUT` and `MENU`), and one Bambara emergency phrase: `DƐMƐ TELIMAN`
("urgent help", as the flow's emergency menu line says), or `TELIMAN` alone,
written with the modern letters or the GSM-7 spelling (`DEME TELIMAN`).
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
    EMERGENCY = "emergency"
    """The emergency numbers at once, whatever the state, over the rate limit too."""


WORDS: dict[str, Keyword] = {
    "MENU": Keyword.MENU,
    "AIDE": Keyword.MENU,
    "HELP": Keyword.MENU,
    "STOP": Keyword.STOP,
    "ARRET": Keyword.STOP,
    "START": Keyword.START,
    "DEBUT": Keyword.START,
    "SUIVI": Keyword.TRACK,
    "TRACK": Keyword.TRACK,
    "STATUS": Keyword.TRACK,
    "STATUT": Keyword.TRACK,
    "EFFACER": Keyword.ERASE,
    "DELETE": Keyword.ERASE,
    "SOS": Keyword.EMERGENCY,
    "URGENCE": Keyword.EMERGENCY,
    "URGENT": Keyword.EMERGENCY,
    "EMERGENCY": Keyword.EMERGENCY,
    "TELIMAN": Keyword.EMERGENCY,
}
PHRASES: dict[str, Keyword] = {
    "AU SECOURS": Keyword.EMERGENCY,
    "DEME TELIMAN": Keyword.EMERGENCY,
}
"""Keywords of several words, matched on the whole message (spaces and punctuation folded)."""
_BAMBARA_LETTERS = str.maketrans({"ɛ": "e", "Ɛ": "E", "ɔ": "o", "Ɔ": "O", "ɲ": "ny", "Ɲ": "NY",
                                  "ŋ": "ng", "Ŋ": "NG"})
TAKES_ARGUMENT = frozenset({Keyword.TRACK})
MAX_KEYWORD_MESSAGE = 64
"""Longer messages are conversation, never keywords (and are not normalised)."""

_SHAPE = re.compile(r"^([A-Z]+)(?:[\s:#.,;!-]+(.*?))?[\s.!?]*$", re.DOTALL)


@dataclass(frozen=True)
class KeywordMatch:
    keyword: Keyword
    argument: str = ""


def fold(text: str) -> str:
    """Upper case without accents: `Arrêt` → `ARRET`, `début` → `DEBUT`, `dɛmɛ` → `DEME`."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_BAMBARA_LETTERS))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.upper()


def recognise(text: str) -> KeywordMatch | None:
    """The keyword a whole message is, or None."""
    stripped = text.strip()
    if not stripped or len(stripped) > MAX_KEYWORD_MESSAGE or stripped[0].isdigit():
        return None
    phrase = PHRASES.get(" ".join(re.findall(r"[A-Z]+", fold(stripped))))
    if phrase is not None:
        return KeywordMatch(phrase)
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


def is_emergency(text: str) -> bool:
    match = recognise(text)
    return match is not None and match.keyword is Keyword.EMERGENCY


def _glued(folded: str) -> KeywordMatch | None:
    """`SUIVI12345678`: a reference typed straight after the keyword."""
    for word, keyword in WORDS.items():
        if keyword in TAKES_ARGUMENT and folded.startswith(word):
            rest = folded[len(word):].strip()
            if rest[:1].isdigit():
                return KeywordMatch(keyword, rest)
    return None
