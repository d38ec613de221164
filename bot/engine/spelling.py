"""How a flow's texts are spelled on a channel (SPEC §5): a rendering step, after filling.

The flow keeps the modern Bambara letters ɛ ɔ ɲ ŋ; none of them is in GSM-7, so
one of them makes an SMS cost 2-3 times more and a USSD screen hold 80
characters instead of 182. On SMS and USSD, a language whose flow setting is
`gsm7` (Bambara by default) is written with the older Malian spelling instead:
ɛ → è, ɔ → ò, ɲ → ny, ŋ → ng. Upper-case È and Ò are not in GSM-7: E and O.
A channel that speaks (voice) keeps the text as written.
"""

from __future__ import annotations

from bot.flows.model import Flow, Spelling
from bot.types import Channel

GSM7_LETTERS = str.maketrans({
    "ɛ": "è", "Ɛ": "E", "ɔ": "ò", "Ɔ": "O", "ɲ": "ny", "Ɲ": "Ny", "ŋ": "ng", "Ŋ": "Ng",
    "’": "'", "‘": "'", "«": '"', "»": '"', "…": "...",
})
WRITTEN_CHANNELS = frozenset({Channel.SMS, Channel.USSD})
"""Channels whose texts are sent as GSM-7/UCS-2 characters."""


def applies(flow: Flow, language: str, channel: Channel) -> bool:
    return channel in WRITTEN_CHANNELS and flow.spelling.get(language) == Spelling.GSM7


def spelled(flow: Flow, language: str, channel: Channel, text: str) -> str:
    """`text` as the channel shows it in `language`."""
    if not applies(flow, language, channel):
        return text
    return text.translate(GSM7_LETTERS)
