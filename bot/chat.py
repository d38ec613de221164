"""The terminal phone: the same conversation loop and store as the gateways."""

from __future__ import annotations

import sys

from bot.chat_voice import stdin_lines, talk
from bot.conversation import Conversation, InboundMessage
from bot.engine import sms
from bot.engine.render import USSD_CONTINUE, USSD_END, Reply
from bot.flows.checked import load_checked
from bot.privacy import normalise_phone
from bot.settings import get_settings
from bot.store.connection import open_store
from bot.types import Channel


def screen(reply: Reply, channel: Channel, ussd_max_chars: int) -> str:
    """The screen exactly as the phone shows it, then its size."""
    if not reply.text and channel is Channel.SMS:
        return "-- (no reply: the phone opted out or is over the rate limit)"
    if channel is Channel.USSD:
        shown = (USSD_END if reply.end else USSD_CONTINUE) + reply.text
        size = f"{len(shown)}/{ussd_max_chars} chars"
    else:
        shown = reply.text
        size = f"{len(shown)} chars"
    encoding = sms.encoding(reply.text)
    parts = sms.segments(reply.text)
    return f"{shown}\n-- {size} · {encoding} · {parts} SMS segment{'s' if parts > 1 else ''}"


ENDED = {
    Channel.USSD: "-- END: this USSD session is over; the next line dials the code again "
                  "(a new session) and is typed on its first screen",
    Channel.SMS: "-- END: this conversation is over; the next line starts a new one",
}


async def chat(*, channel: str, phone: str, language: str | None) -> int:
    settings = get_settings()
    compiled = load_checked(settings.flow, settings.ussd_max_chars)
    number = normalise_phone(phone, settings.default_region)
    if number is None:
        print(f"not a phone number: {phone}", file=sys.stderr)
        return 2
    store = open_store(settings)
    conversation = Conversation(redis=store.redis, compiled=compiled, settings=settings)
    kind = Channel(channel)
    interactive = sys.stdin.isatty()
    try:
        if language:
            await conversation.set_language(number, language)
        if kind is Channel.VOICE:
            return await talk(conversation, number, stdin_lines(interactive))
        ended = True
        if kind is Channel.USSD:
            ended = await _dial(conversation, kind, number, settings.ussd_max_chars)
        while True:
            if interactive:
                print("> ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                return 0
            text = line.rstrip("\n")
            if kind is Channel.USSD and ended:
                ended = await _dial(conversation, kind, number, settings.ussd_max_chars)
            if not interactive:
                print(f"> {text}")
            reply = await conversation.handle(InboundMessage(kind, number, text))
            print(screen(reply, kind, settings.ussd_max_chars), flush=True)
            ended = reply.end
            if ended:
                print(ENDED[kind], flush=True)
    finally:
        await store.close()


async def _dial(conversation: Conversation, kind: Channel, number: str, max_chars: int) -> bool:
    """A new USSD session, as dialling the code: shows the first screen."""
    reply = await conversation.handle(InboundMessage(kind, number, "", restart=True))
    print(screen(reply, kind, max_chars), flush=True)
    if reply.end:
        print(ENDED[kind], flush=True)
    return reply.end
