"""SMS encoding (GSM-7 or UCS-2) and segment counting (3GPP TS 23.038)."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
from gsm0338.charset import BASIC_CHARACTER_SET, BASIC_CHARACTER_SET_EXTENSION

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


def _widths() -> tuple[dict[int, None], dict[int, None]]:
    """Deletion tables of the characters the codec writes in one septet and in two (an
    escape, then the extension's septet), each asked of the codec itself."""
    one: dict[int, None] = {}
    two: dict[int, None] = {}
    for name in (*BASIC_CHARACTER_SET.values(), *BASIC_CHARACTER_SET_EXTENSION.values()):
        character = unicodedata.lookup(name)
        try:
            width = len(character.encode("gsm03.38"))
        except UnicodeEncodeError:
            continue
        (one if width == 1 else two)[ord(character)] = None
    return one, two


_ONE_SEPTET, _TWO_SEPTETS = _widths()
_BEYOND_ONE_SEPTET = re.compile("[^" + "".join(re.escape(chr(code)) for code in _ONE_SEPTET)
                                + "]")


def _septets(text: str) -> int | None:
    """GSM-7 length in septets (extension characters count two), or None if not GSM-7.

    What `len(text.encode("gsm03.38"))` says (the codec is per character), counted
    with two `str.translate` in C: the codec's Python loop costs ~40 µs a screen. Not
    remembered: a screen filled with a migrant's answers is new every time, and a
    process keeps no text holding them (static screens are remembered whole, by
    `render`, once paginated).
    """
    if _BEYOND_ONE_SEPTET.search(text) is None:  # most screens: a scan in C
        return len(text)
    rest = text.translate(_ONE_SEPTET)
    if rest.translate(_TWO_SEPTETS):
        return None
    return len(text) + len(rest)


def encoding(text: str) -> Encoding:
    return Encoding.GSM7 if _septets(text) is not None else Encoding.UCS2


def segments(text: str) -> int:
    """How many SMS parts `text` costs."""
    septets = _septets(text)
    if septets is not None:
        return 1 if septets <= GSM7_SINGLE else -(-septets // GSM7_PART)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= UCS2_SINGLE else -(-units // UCS2_PART)
