"""A recorded answer (voice): the gateway's recording id and URL, kept as the answer's text.

A caller who cannot type a name says it after a beep; the gateway keeps the
audio and sends its id and URL. That reference is the answer (stored with the
case, erased with it); the audio itself is never downloaded nor logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "recording"
MAX_URL = 400
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_URL = re.compile(r"^https://[^\s/]+/\S*$")


@dataclass(frozen=True)
class Recording:
    recording_id: str
    url: str

    def as_answer(self) -> str:
        return f"{PREFIX} {self.recording_id} {self.url}"


def recording(recording_id: str, url: str) -> Recording | None:
    """A recording reference, or None when the gateway's fields are not one."""
    if not _ID.match(recording_id) or len(url) > MAX_URL or not _URL.match(url):
        return None
    return Recording(recording_id, url)


def parse(answer: str) -> Recording | None:
    """The recording an answer refers to, or None for a typed answer."""
    prefix, _, rest = answer.strip().partition(" ")
    if prefix != PREFIX:
        return None
    recording_id, _, url = rest.partition(" ")
    return recording(recording_id, url)
