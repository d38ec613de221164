"""Africa's Talking Voice: read the call's callback, answer in its XML.

Authenticated like the USSD webhook: Africa's Talking does not sign requests,
so the callback URL carries `?key=<HELPLINE_USSD_SECRET>` (compared in
constant time), and so does every `callbackUrl` the answers give it. The
callback posts `isActive` (0 once the call is over: nothing to answer),
`sessionId`, `callerNumber`, and after an action `dtmfDigits` or
`recordingUrl`. The answer uses `GetDigits`, `Say`, `Play`, `Record` and
`Redirect`, with the same conversation and spoken scripts as Twilio.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

from starlette.datastructures import FormData

from bot.channels.calls import CallInput, call_input
from bot.engine import recordings
from bot.engine.speech import Expect, Part, Script
from bot.errors import MalformedRequest

VOICE_PATH = "/webhooks/voice/africastalking"
XML_TYPE = "application/xml"
GET_DIGITS_TIMEOUT_SECONDS = 7
RECORD_MAX_SECONDS = 30
_NOT_AN_ID = re.compile(r"[^A-Za-z0-9_\-]")


def read_call(form: FormData, screen: str | None, default_region: str) -> CallInput:
    fields = {name: form.get(name, "") for name in (
        "sessionId", "callerNumber", "isActive", "dtmfDigits", "recordingUrl")}
    if not all(isinstance(value, str) for value in fields.values()):
        raise MalformedRequest("sessionId, callerNumber and isActive must be single fields")
    values = {name: str(value) for name, value in fields.items()}
    if not values["sessionId"] or values["isActive"] not in ("0", "1"):
        raise MalformedRequest("sessionId and isActive (0 or 1) are required")
    url = values["recordingUrl"]
    return call_input(
        call_id=values["sessionId"], sender=values["callerNumber"], screen=screen,
        default_region=default_region, digits=values["dtmfDigits"],
        recording=(recording_id(url), url) if url else None,
        recording_hosts=recordings.AFRICASTALKING_HOSTS,
        ended=values["isActive"] == "0",
    )


def recording_id(url: str) -> str:
    """Africa's Talking names a recording only by its URL: its file name stands for an id."""
    name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return _NOT_AN_ID.sub("", name)[:64] or "recording"


def _add(parent: ET.Element, parts: tuple[Part, ...], audio_url: Callable[[str], str]) -> None:
    for part in parts:
        if part.audio:
            ET.SubElement(parent, "Play", url=audio_url(part.audio))
        else:
            ET.SubElement(parent, "Say").text = part.text


def xml(script: Script, *, callback: str, audio_url: Callable[[str], str]) -> str:
    """The XML of one screen, shaped as the TwiML (twilio_voice.twiml) is."""
    response = ET.Element("Response")
    if script.expect is Expect.NOTHING:
        _add(response, script.parts, audio_url)
    elif script.expect is Expect.RECORD:
        record = ET.SubElement(response, "Record", finishOnKey="#",
                               maxLength=str(RECORD_MAX_SECONDS), trimSilence="true",
                               playBeep="true", callbackUrl=callback)
        _add(record, script.parts, audio_url)
        ET.SubElement(response, "Redirect").text = callback
    else:
        for _ in range(2):
            attributes = {"timeout": str(GET_DIGITS_TIMEOUT_SECONDS), "finishOnKey": "#",
                          "callbackUrl": callback}
            if script.digits:
                attributes["numDigits"] = str(script.digits)
            _add(ET.SubElement(response, "GetDigits", attributes), script.parts, audio_url)
        _add(response, script.timeout, audio_url)
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(response, encoding="unicode")


def nothing() -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response/>'
