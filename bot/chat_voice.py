"""`helpline chat --channel voice`: what a caller hears, and the keys they press, in a terminal.

The same conversation and inputs as the voice webhooks (bot/channels/calls.py):
each line is what the caller does at the current screen. Digits are keys
(`*` hears the screen again, `0` goes back, a reference ends with `#`); at a
recording, the words typed stand for what the caller says; an empty line is
silence: the screen is said once more, then the emergency numbers, and the
call ends. The next line after a call ends calls again.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable

from bot.channels.calls import CallInput, call_input
from bot.conversation import Conversation, InboundMessage
from bot.engine import speech
from bot.types import Channel

Ask = Callable[[], str | None]

WAITING = {
    speech.Expect.KEY: "press a key ({digits} digit{plural}; * again, 0 back)",
    speech.Expect.DIGITS: "type the digits, then # (* again, 0 back)",
    speech.Expect.RECORD: "speak after the beep (type the words you would say; empty: silence)",
    speech.Expect.NOTHING: "the call ends",
}


def heard(script: speech.Script) -> str:
    """The screen as the caller hears it, then how long it takes and what it waits for."""
    lines = [f"  ▶ {part.audio}" if part.audio else
             f"  « {part.text} »" + (f" ({part.tts})" if part.tts else "")
             for part in script.parts]
    voice = script.tts or "no TTS voice: read by the default voice"
    waiting = WAITING[script.expect].format(digits=script.digits,
                                            plural="s" if script.digits > 1 else "")
    lines.append(f"-- about {script.seconds:.0f} s ({voice}) · {waiting}")
    return "\n".join(lines)


class Call:
    """One call after another from the same phone, through the conversation."""

    def __init__(self, conversation: Conversation, phone: str) -> None:
        self.conversation = conversation
        self.phone = phone
        self.call_id = ""
        self.screen: int | None = None
        self.script: speech.Script | None = None
        self.silences = 0

    async def dial(self) -> speech.Script:
        self.call_id = f"chat-{secrets.token_hex(6)}"
        return await self._send(call_input(call_id=self.call_id, sender=self.phone, screen=None,
                                           default_region=""))

    async def act(self, line: str) -> tuple[speech.Script, bool]:
        """The caller's line at the current screen; the script heard and whether it is new."""
        script = self.script
        if script is None or script.expect is speech.Expect.NOTHING:
            return await self.dial(), True
        if not line and script.expect is not speech.Expect.RECORD:
            self.silences += 1
            if self.silences == 1:
                return script, False
            self.script = speech.Script(script.language, script.tts, script.timeout,
                                        speech.Expect.NOTHING)
            return self.script, True
        if script.expect is speech.Expect.RECORD and line:
            said = CallInput(self.call_id, self.phone, self.screen, text=line)
            return await self._send(said), True
        pressed = call_input(call_id=self.call_id, sender=self.phone, screen=str(self.screen),
                             default_region="", digits=line)
        return await self._send(pressed), True

    async def _send(self, call: CallInput) -> speech.Script:
        reply = await self.conversation.handle(InboundMessage(
            Channel.VOICE, self.phone, call.text, restart=call.screen is None,
            message_id=call.message_id,
        ))
        flow = self.conversation.compiled.flow
        self.script = speech.script_of(reply, flow, self.conversation.language_hint(
            self.conversation.pseudonym(self.phone)))
        self.screen = call.next_screen
        self.silences = 0
        return self.script


async def talk(conversation: Conversation, phone: str, ask: Ask) -> int:
    """Call, then act on each line `ask` returns until it returns None."""
    call = Call(conversation, phone)
    print(heard(await call.dial()), flush=True)
    while True:
        line = ask()
        if line is None:
            return 0
        script, new = await call.act(line)
        print(heard(script) if new else f"(silence: said once more)\n{heard(script)}",
              flush=True)


def stdin_lines(interactive: bool) -> Ask:
    def ask() -> str | None:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return None
        text = line.rstrip("\n")
        if not interactive:
            print(f"> {text}")
        return text

    return ask
