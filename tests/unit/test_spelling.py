"""Spelling per channel (docs/spec.md §5): Bambara in GSM-7 on SMS and USSD, as written on calls."""

from __future__ import annotations

from dataclasses import replace

from bot.engine import sms
from bot.engine.render import Limits, render
from bot.engine.session import Session
from bot.engine.spelling import spelled
from bot.types import Channel
from tests.factories import default_flow

FLOW = default_flow().flow


def test_bambara_letters_become_their_gsm7_spelling_on_written_channels() -> None:
    text = "Ɲinini sɛbɛnna. Nimɔrɔ: ŋ. DƐMƐ"
    for channel in (Channel.SMS, Channel.USSD):
        shown = spelled(FLOW, "bm", channel, text)
        assert shown == "Nyinini sèbènna. Nimòrò: ng. DEME"
        assert sms.encoding(shown) is sms.Encoding.GSM7
    assert spelled(FLOW, "bm", Channel.VOICE, text) == text  # a call reads the modern letters


def test_a_flow_can_keep_the_modern_letters() -> None:
    modern = replace(FLOW, spelling={})
    assert spelled(modern, "bm", Channel.SMS, "sɛbɛn") == "sɛbɛn"


def test_every_bambara_screen_of_the_default_flow_is_gsm7_on_sms_and_ussd() -> None:
    for name, state in FLOW.states.items():
        if state.action is not None:
            continue
        for channel in (Channel.SMS, Channel.USSD):
            reply = render(FLOW, Session(state=name, language="bm"), Limits(channel))
            assert sms.encoding(reply.text) is sms.Encoding.GSM7, (name, reply.text)


def test_a_ucs2_ussd_screen_is_paginated_to_80_characters() -> None:
    modern = replace(FLOW, spelling={})
    reply = render(modern, Session(state="avr_consent", language="bm"), Limits(Channel.USSD))
    assert reply.pages > 1 and len("CON " + reply.text) <= 80
