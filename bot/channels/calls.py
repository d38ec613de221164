"""What one request of a voice gateway brings, whichever the gateway (Twilio, Africa's Talking).

One call is one conversation: the first request of a call starts it (a waiting
return request is offered to continue), each keypad or recording action brings
one input. Every action URL carries the number of the screen it answers
(`?n=`), so a request names the input it brings: a retried request is answered
as before, and `*` asks again for the screen the previous request produced (the
receipts answer it, nothing advances).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.channels.forms import sender_phone
from bot.engine import recordings
from bot.engine.validators import SKIP
from bot.errors import MalformedRequest

log = logging.getLogger(__name__)

SCREEN_PARAMETER = "n"
REPEAT = "*"
KEYPAD = frozenset("0123456789*#")
MAX_SCREENS = 10_000
MAX_CALL_ID = 128
MAX_DIGITS = 32
"""Longer than any entry a prompt takes (a reference is 8 digits, a menu key 1 or 2)."""
WRONG_ENTRY = ""
"""What a keypad entry over `MAX_DIGITS` brings: no screen takes an empty answer (a menu,
a reference, a recorded question alike), so the screen comes again with its hint."""


@dataclass(frozen=True)
class CallInput:
    call_id: str
    phone: str | None
    """E.164, or None for a hidden or non-phone caller."""
    screen: int | None
    """The screen this request answers (None: the call has just started)."""
    text: str = ""
    repeat: bool = False
    ended: bool = False

    @property
    def message_id(self) -> str:
        """The input's id: a retry repeats it; `*` names the request that made the screen."""
        return f"{self.call_id}:{self.next_screen}"

    @property
    def next_screen(self) -> int:
        """The number of the screen the answer to this request is."""
        if self.screen is None:
            return 0
        return self.screen if self.repeat else self.screen + 1


def call_input(*, call_id: str, sender: str, screen: str | None, default_region: str,
               digits: str = "", recording: tuple[str, str] | None = None,
               recording_hosts: tuple[str, ...] = recordings.GATEWAY_HOSTS,
               ended: bool = False) -> CallInput:
    """The input of one request; MalformedRequest when a field is not what a gateway sends.
    `recording` (id, URL) is kept only from one of `recording_hosts`, the gateway's own."""
    if not call_id or len(call_id) > MAX_CALL_ID:
        raise MalformedRequest("the call id is required")
    number: int | None = None
    if screen is not None:
        if not screen.isdigit() or int(screen) > MAX_SCREENS:
            raise MalformedRequest(f"{SCREEN_PARAMETER} must be a screen number")
        number = int(screen)
    phone = sender_phone(sender, default_region) if sender else None
    if ended:
        return CallInput(call_id, phone, number, ended=True)
    if recording is not None:
        found = recordings.recording(*recording, recording_hosts)
        if found is not None:
            return CallInput(call_id, phone, number, text=found.as_answer())
        # Not the gateway's own recording: not kept, heard as silence (a skip). The host
        # only is logged, never the URL.
        log.warning("recording not kept: not from the gateway's recording hosts",
                    extra={"host": recordings.host_of(recording[1])[:100]})
        return CallInput(call_id, phone, number, text=SKIP)
    if number is None:
        return CallInput(call_id, phone, None)
    if len(digits) > MAX_DIGITS:
        return CallInput(call_id, phone, number, text=WRONG_ENTRY)
    if digits and set(digits) == {REPEAT}:
        return CallInput(call_id, phone, number, repeat=True)
    # Only keys count: Twilio reports a hang-up during a recording as Digits=hangup.
    entry = "".join(key for key in digits if key in KEYPAD).rstrip("#").replace(REPEAT, "")
    # Nothing recorded (the caller pressed # at once, or stayed silent): a skip.
    return CallInput(call_id, phone, number, text=entry or SKIP)
