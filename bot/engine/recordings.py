"""A recorded answer (voice): the gateway's recording id and URL, kept as the answer's text.

A caller who cannot type a name says it after a beep; the gateway keeps the
audio and sends its id and URL. That reference is the answer (stored with the
case, erased with it); the audio itself is never downloaded nor logged.

A recording is an answer only when a voice gateway brings it (bot/channels/calls.py),
only from that gateway's own hosts (`TWILIO_HOSTS`, `AFRICASTALKING_HOSTS`: the one
list, docs/gateways.md), and typed text never passes for one (bot/engine/validators.py).
`TWILIO_API_BASE_URL` does not widen the list: it moves where the worker sends its REST
calls (a fake in tests, a proxy), not where Twilio keeps recordings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

PREFIX = "recording"
MAX_URL = 400
TWILIO_HOSTS = ("api.twilio.com",)
"""Twilio's `RecordingUrl`: `https://api.twilio.com/2010-04-01/Accounts/AC…/Recordings/RE…`."""
AFRICASTALKING_HOSTS = ("africastalking.com", ".africastalking.com")
"""Africa's Talking's `recordingUrl` (`https://voice.africastalking.com/…` in published
integrations; its docs name no host): its domain, or any host under it."""
GATEWAY_HOSTS = TWILIO_HOSTS + AFRICASTALKING_HOSTS
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_URL = re.compile(r"^https://[^\s/]+/\S*$")


@dataclass(frozen=True)
class Recording:
    recording_id: str
    url: str

    def as_answer(self) -> str:
        return f"{PREFIX} {self.recording_id} {self.url}"


def host_of(url: str) -> str:
    """The URL's host, lower-cased ('' when it has none)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def on_hosts(url: str, hosts: tuple[str, ...]) -> bool:
    """`url` is `https://<host>/…` with `host` one of `hosts` (`.domain`: any host under
    it), and no user, password nor port."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = parts.hostname or ""
    if parts.scheme != "https" or parts.netloc.lower() != host:
        return False
    return any(host == name if not name.startswith(".") else host.endswith(name)
               for name in hosts)


def recording(recording_id: str, url: str,
              hosts: tuple[str, ...] = GATEWAY_HOSTS) -> Recording | None:
    """A recording reference, or None when the gateway's fields are not one from `hosts`."""
    if (not _ID.match(recording_id) or len(url) > MAX_URL or not _URL.match(url)
            or not on_hosts(url, hosts)):
        return None
    return Recording(recording_id, url)


def parse(answer: str) -> Recording | None:
    """The recording an answer refers to, or None for a typed answer."""
    prefix, _, rest = answer.strip().partition(" ")
    if prefix != PREFIX:
        return None
    recording_id, _, url = rest.partition(" ")
    return recording(recording_id, url)
