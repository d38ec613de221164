"""How a flow's texts are spelled on a channel (docs/spec.md §5): a rendering step, after filling.

The flow keeps the modern Bambara letters ɛ ɔ ɲ ŋ; none of them is in GSM-7, so
one of them makes an SMS cost 2-3 times more and a USSD screen hold 80
characters instead of 182. On SMS and USSD, a language whose flow `spelling`
is `gsm7` (Bambara by default) is written with the older Malian spelling:
ɛ → è, ɔ → ò, ɲ → ny, ŋ → ng. A flow may give a language its own letters
(French: ç → c, so "Français" is "Francais" on the language menus). A channel
that speaks (voice) keeps the text as written.
"""

from __future__ import annotations

import re
from functools import lru_cache

from bot.flows.model import Flow
from bot.types import Channel

WRITTEN_CHANNELS = frozenset({Channel.SMS, Channel.USSD})
"""Channels whose texts are sent as GSM-7/UCS-2 characters."""


@lru_cache(maxsize=64)
def _table(flow: Flow, language: str) -> dict[int, str]:
    return str.maketrans(dict(flow.spelling.get(language, {})))


@lru_cache(maxsize=64)
def _finder(flow: Flow, language: str) -> re.Pattern[str] | None:
    """Finds a letter the language's spelling changes (None: it changes none)."""
    letters = "".join(re.escape(letter) for letter in flow.spelling.get(language, {}))
    return re.compile(f"[{letters}]") if letters else None


def applies(flow: Flow, language: str, channel: Channel) -> bool:
    return channel in WRITTEN_CHANNELS and language in flow.spelling


def spelled(flow: Flow, language: str, channel: Channel, text: str) -> str:
    """`text` as the channel shows it in `language`."""
    if not applies(flow, language, channel):
        return text
    finder = _finder(flow, language)
    if finder is None or finder.search(text) is None:
        return text  # nothing to change: no translate (~50 ns a character off ASCII)
    return text.translate(_table(flow, language))
