"""SMS encoding (GSM-7 or UCS-2) and segment counting (3GPP TS 23.038)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@lru_cache(maxsize=8192)
def _septets(text: str) -> int | None:
    """GSM-7 length in septets (extension characters count two), or None if not GSM-7."""
    try:
        return len(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        return None


def encoding(text: str) -> Encoding:
    return Encoding.GSM7 if _septets(text) is not None else Encoding.UCS2


def segments(text: str) -> int:
    """How many SMS parts `text` costs."""
    septets = _septets(text)
    if septets is not None:
        return 1 if septets <= GSM7_SINGLE else -(-septets // GSM7_PART)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= UCS2_SINGLE else -(-units // UCS2_PART)
