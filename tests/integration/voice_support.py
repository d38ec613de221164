"""A caller on Twilio Programmable Voice, as the tests play it.

Requests are signed with the twilio SDK for the exact URL Twilio would request
(the public URL, with the action's query); the TwiML answer is walked as
Twilio walks it: a `<Gather>` that times out goes on to the next verb, a
`<Record>` with nothing said goes on to the `<Redirect>`.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from bot.channels.twilio_voice import VOICE_PATH
from tests.integration.webhooks_support import HELPLINE_NUMBER, PUBLIC_URL, sign

_calls = itertools.count(1)
_recordings = itertools.count(1)
ACCOUNT = "AC" + "0" * 32


def new_call_sid() -> str:
    return f"CA{next(_calls):032x}"


def recording_sid() -> str:
    return f"RE{next(_recordings):032x}"


def recording_url(sid: str) -> str:
    return f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}"


@dataclass(frozen=True)
class Verb:
    tag: str
    attributes: dict[str, str]
    said: tuple[str, ...] = ()
    """Words said (or `play:<url>`) by this verb or the verbs nested in it."""
    target: str = ""


@dataclass(frozen=True)
class Heard:
    """One TwiML answer."""

    verbs: tuple[Verb, ...]
    xml: str

    @classmethod
    def of(cls, response: httpx.Response) -> Heard:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        root = ET.fromstring(response.text)
        assert root.tag == "Response"
        verbs = []
        for verb in root:
            nested = [verb, *verb] if verb.tag == "Gather" else [verb]
            said = tuple(_said(element) for element in nested if element.tag in ("Say", "Play"))
            verbs.append(Verb(verb.tag, dict(verb.attrib), said, (verb.text or "").strip()))
        return cls(tuple(verbs), response.text)

    def first(self, tag: str) -> Verb:
        for verb in self.verbs:
            if verb.tag == tag:
                return verb
        raise AssertionError(f"no <{tag}> in {self.xml}")

    @property
    def text(self) -> str:
        """What the caller hears before answering (or before the call ends)."""
        heard: list[str] = []
        for verb in self.verbs:
            heard.extend(verb.said)
            if verb.tag in ("Gather", "Record", "Hangup"):
                break
        return " ".join(heard)

    def after_timeouts(self, count: int) -> tuple[str, bool]:
        """What is heard once `count` keypad waits passed with no key; and whether it hangs up."""
        heard: list[str] = []
        waits = 0
        for verb in self.verbs:
            if verb.tag == "Gather":
                if waits == count:
                    return " ".join([*heard, *verb.said]), False
                waits += 1
                heard = []
                continue
            if verb.tag == "Hangup":
                return " ".join(heard), True
            heard.extend(verb.said)
        return " ".join(heard), False

    @property
    def hangs_up(self) -> bool:
        """The call ends after this screen, with nothing asked of the caller."""
        for verb in self.verbs:
            if verb.tag in ("Gather", "Record"):
                return False
            if verb.tag == "Hangup":
                return True
        return False


def _said(element: ET.Element) -> str:
    text = (element.text or "").strip()
    return f"play:{text}" if element.tag == "Play" else text


@dataclass
class Caller:
    client: httpx.AsyncClient
    phone: str = "+22376000101"
    call_sid: str = field(default_factory=new_call_sid)
    heard: Heard | None = None
    recordings: list[str] = field(default_factory=list)

    async def post(self, url: str, params: dict[str, str], *,
                   signed: bool = True) -> httpx.Response:
        full = {"CallSid": self.call_sid, "AccountSid": ACCOUNT, "From": self.phone,
                "To": HELPLINE_NUMBER, "CallStatus": "in-progress", "Direction": "inbound",
                **params}
        headers = {"X-Twilio-Signature": sign(url, full)} if signed else {}
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return await self.client.post(path, data=full, headers=headers)

    async def dial(self, *, signed: bool = True) -> Heard:
        self.call_sid = new_call_sid()
        response = await self.post(PUBLIC_URL + VOICE_PATH, {"CallStatus": "ringing"},
                                   signed=signed)
        self.heard = Heard.of(response)
        return self.heard

    async def press(self, digits: str) -> Heard:
        assert self.heard is not None
        gather = self.heard.first("Gather")
        self.heard = Heard.of(await self.post(gather.attributes["action"], {"Digits": digits}))
        return self.heard

    async def speak(self, url: str | None = None) -> Heard:
        """Say something after the beep, then `#`: Twilio posts the recording's reference
        (`url`: a RecordingUrl other than Twilio's own)."""
        assert self.heard is not None
        record = self.heard.first("Record")
        sid = recording_sid()
        self.recordings.append(sid)
        self.heard = Heard.of(await self.post(record.attributes["action"], {
            "RecordingSid": sid, "RecordingUrl": url or recording_url(sid),
            "RecordingDuration": "3", "Digits": "#",
        }))
        return self.heard

    async def stay_silent(self) -> Heard:
        """Nothing said at a `<Record>`: Twilio skips its action and follows the `<Redirect>`."""
        assert self.heard is not None
        redirect = self.heard.first("Redirect")
        self.heard = Heard.of(await self.post(redirect.target, {}))
        return self.heard


@dataclass
class AtCaller:
    """A caller on Africa's Talking Voice: callbacks authenticated by the URL's `key`."""

    client: httpx.AsyncClient
    phone: str = "+22376000201"
    session_id: str = "ATVId_1"
    xml: ET.Element | None = None

    async def post(self, url: str, params: dict[str, str]) -> httpx.Response:
        full = {"sessionId": self.session_id, "isActive": "1", "direction": "Inbound",
                "callerNumber": self.phone, "destinationNumber": HELPLINE_NUMBER, **params}
        parts = urlsplit(url)
        return await self.client.post(parts.path + (f"?{parts.query}" if parts.query else ""),
                                      data=full)

    def answered(self, response: httpx.Response) -> ET.Element:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        self.xml = ET.fromstring(response.text)
        assert self.xml.tag == "Response"
        return self.xml

    async def dial(self, url: str) -> ET.Element:
        self.session_id = f"ATVId_{next(_calls)}"
        return self.answered(await self.post(url, {}))

    async def press(self, digits: str) -> ET.Element:
        assert self.xml is not None
        callback = self.xml.find("GetDigits")
        assert callback is not None, ET.tostring(self.xml)
        return self.answered(await self.post(callback.attrib["callbackUrl"],
                                             {"dtmfDigits": digits}))

    async def speak(self, url: str) -> ET.Element:
        assert self.xml is not None
        record = self.xml.find("Record")
        assert record is not None, ET.tostring(self.xml)
        return self.answered(await self.post(record.attrib["callbackUrl"],
                                             {"recordingUrl": url}))


def at_said(element: ET.Element) -> str:
    """Every `Say` before the first action that waits for the caller."""
    heard: list[str] = []
    for verb in element:
        heard.extend((say.text or "") for say in verb.iter("Say"))
        if verb.tag in ("GetDigits", "Record"):
            break
    return " ".join(heard)
