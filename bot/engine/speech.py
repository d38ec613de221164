"""Speaking a screen: the voice channel's rendering of the engine's screens.

The same screen a USSD phone shows is turned into what a caller hears: the
text in short chunks, each option as "Pour <label>, tapez <key>.", the
navigation once, phone numbers and references digit by digit, and what the
caller is expected to do (press one key, type digits then `#`, speak after the
beep, or nothing: the call ends). Every phrase comes from the flow's `voice_*`
texts. A screen with an `audio:` recording for the language is played instead.

The result is a `Script`, carried as the text of the engine's `Reply` (so
retries and receipts work unchanged); the gateway (Twilio, Africa's Talking)
turns it into its own markup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.cases.references import REFERENCE_DIGITS
from bot.engine.render import PLACEHOLDER, Reply, fill
from bot.engine.session import Session
from bot.flows.model import NAV_BACK, Action, Flow, Option, State, StateKind

SCRIPT_MARK = '{"voice":'
CHUNK_CHARS = 110
"""A spoken chunk: about one sentence, ten seconds at most."""
WORDS_PER_SECOND = 2.3
"""Slow, clear speech (about 140 words a minute), digits counted as words."""
PAUSE_SECONDS = 0.4
"""Between two chunks."""
KEYPAD_VALIDATORS = {"reference": REFERENCE_DIGITS}
"""Questions answered on the keypad, with the digits their answer has (the keypad stops
there: a longer entry never reaches us); every other free-text question is recorded."""
_OPTION_LINE = re.compile(r"^(\d{1,2}) (.+)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_DIGITS = re.compile(r"\d+")
_PHONE_LIKE = re.compile(r"^[\d\s+\-.()]+$")
# Bambara letters a French voice cannot read, in the French spelling of their sound.
_FOR_FRENCH_VOICE = str.maketrans({"ɛ": "è", "Ɛ": "È", "ɔ": "o", "Ɔ": "O", "ɲ": "gn",
                                   "Ɲ": "Gn", "ŋ": "ng", "Ŋ": "Ng"})


class Expect(StrEnum):
    KEY = "key"
    """One choice on the keypad (`digits` keys long)."""
    DIGITS = "digits"
    """Digits ended by `#`, at most `digits` of them (a reference)."""
    RECORD = "record"
    """Speech, recorded after a beep and ended by `#`."""
    NOTHING = "nothing"
    """The call ends after this."""


@dataclass(frozen=True)
class Part:
    """One thing said: words, or a recording to play."""

    text: str = ""
    audio: str = ""
    tts: str = ""
    """Said in another TTS language than the screen's ("For English, press 2.")."""


@dataclass(frozen=True)
class Script:
    language: str
    tts: str
    """The text-to-speech language (fr-FR); '' when the flow has none for `language`."""
    parts: tuple[Part, ...]
    expect: Expect
    digits: int = 1
    timeout: tuple[Part, ...] = ()
    """Said when no key was pressed, twice: the emergency numbers, then the call ends."""

    def to_text(self) -> str:
        data: dict[str, Any] = {
            "voice": 1, "l": self.language, "t": self.tts, "e": str(self.expect),
            "d": self.digits, "p": [_part_json(p) for p in self.parts],
            "o": [_part_json(p) for p in self.timeout],
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @property
    def seconds(self) -> float:
        return spoken_seconds(self.parts)


def _part_json(part: Part) -> list[str]:
    if part.audio:
        return ["a", part.audio]
    return ["s", part.text, part.tts] if part.tts else ["s", part.text]


def _part(raw: list[str]) -> Part:
    kind, value, *tts = raw
    return Part(audio=value) if kind == "a" else Part(text=value, tts="".join(tts))


def is_script(text: str) -> bool:
    return text.startswith(SCRIPT_MARK)


def script_of(reply: Reply, flow: Flow, language: str | None = None) -> Script:
    """The script a reply carries; a plain text (the fallback, a notice) is said as is."""
    if is_script(reply.text):
        data: dict[str, Any] = json.loads(reply.text)
        return Script(
            language=str(data["l"]), tts=str(data["t"]), expect=Expect(data["e"]),
            digits=int(data["d"]), parts=tuple(_part(p) for p in data["p"]),
            timeout=tuple(_part(p) for p in data["o"]),
        )
    language = language if language in flow.languages else flow.default_language
    parts = tuple(Part(text=chunk) for chunk in chunks(reply.text))
    if reply.end or not reply.text:
        return Script(language, tts_of(flow, language), parts, Expect.NOTHING)
    return Script(language, tts_of(flow, language), parts, Expect.KEY,
                  timeout=_timeout(flow, language))


def tts_of(flow: Flow, language: str) -> str:
    return flow.tts.get(language, "")


def tts_voice(flow: Flow, language: str) -> str:
    """The TTS language a screen is said with: its own, else the flow's default one."""
    return flow.tts.get(language) or flow.tts.get(flow.default_language, "")


def spell_digits(number: str) -> str:
    """'80 00 11 15' -> '8 0, 0 0, 1 1, 1 5': each digit said on its own."""
    return ", ".join(" ".join(group) for group in _DIGITS.findall(number))


def chunks(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Short spoken pieces: lines, then sentences, then words when still too long."""
    pieces: list[str] = []
    for line in text.splitlines():
        for sentence in _SENTENCE_END.split(line.strip()):
            words = sentence.split()
            current = ""
            for word in words:
                if current and len(current) + 1 + len(word) > limit:
                    pieces.append(current)
                    current = word
                else:
                    current = f"{current} {word}" if current else word
            if current:
                pieces.append(current)
    return pieces


def spoken_seconds(parts: tuple[Part, ...] | list[Part]) -> float:
    """About how long the words take to say (recordings are not measured)."""
    words = sum(len(part.text.replace(",", " ").split()) for part in parts if part.text)
    return round(words / WORDS_PER_SECOND + PAUSE_SECONDS * max(len(parts) - 1, 0), 1)


def say_filled(flow: Flow, template: str, language: str, values: Mapping[str, str],
               answers: Mapping[str, str]) -> str:
    """`fill`, with phone numbers and references spelled digit by digit."""

    def spoken(match: re.Match[str]) -> str:
        name = match.group(1)
        head, _, rest = name.partition(".")
        contact_id, _, attribute = rest.partition(".")
        contact = flow.contacts.get(contact_id) if head == "contacts" else None
        if contact is not None and not attribute and _PHONE_LIKE.match(contact.number):
            number = spell_digits(contact.number)
            if not contact.verified and "unverified" in flow.texts:
                return f"{number} {flow.text('unverified', language)}"
            return number
        if name == "reference":  # in its two groups of four, as it is written
            reference = values.get("reference", "")
            return spell_digits(f"{reference[:4]} {reference[4:]}")
        return match.group(0)

    said = fill(flow, PLACEHOLDER.sub(spoken, template), language, values, answers)
    if not tts_of(flow, language):
        said = said.translate(_FOR_FRENCH_VOICE)
    return said


def render_speech(flow: Flow, session: Session) -> Reply:
    """The session's current screen, spoken."""
    language = session.language
    hint = [flow.text(session.hint, language)] if session.hint else []
    if session.resuming:
        script = _menu_from_lines(flow, language, [*hint, *flow.text("resume", language)
                                                  .splitlines()])
        return Reply(text=script.to_text())
    state = flow.states[session.state]
    script = screen_script(flow, state, language, session.vars, session.answers, hint)
    return Reply(text=script.to_text(), end=state.kind is StateKind.END)


def screen_script(flow: Flow, state: State, language: str, values: Mapping[str, str],
                  answers: Mapping[str, str], hint: list[str] | None = None) -> Script:
    def said(template: str) -> str:
        return say_filled(flow, template, language, values, answers)

    tts = tts_of(flow, language)
    timeout = _timeout(flow, language)
    lines = [said(line) for line in hint or []]
    audio = state.audio.get(language)
    body = [*lines, said(state.text.get(language, ""))]
    if state.kind is StateKind.END:
        return Script(language, tts, _parts(body, audio), Expect.NOTHING)
    navigation = []
    if state.nav and state.name != flow.home:
        navigation.append(said(flow.text("voice_nav", language)))
    else:
        navigation.append(said(flow.text("voice_repeat", language)))
    if state.kind is StateKind.QUESTION:
        length = KEYPAD_VALIDATORS.get(state.validate or "text")
        if length is not None:
            keypad = said(flow.text("voice_digits", language))
            return Script(language, tts, _parts([*body, keypad, *navigation], audio),
                          Expect.DIGITS, digits=length, timeout=timeout)
        # What the recording is for and who hears it is said first, then the question.
        parts = _parts([*lines, said(flow.text("voice_record", language)),
                        said(state.text.get(language, "")),
                        said(flow.text("voice_beep", language))], audio)
        return Script(language, tts, parts, Expect.RECORD, digits=0, timeout=timeout)
    options = [part for option in state.options
               for part in _option(flow, option, language, values, answers)]
    digits = max((len(option.key) for option in state.options), default=1)
    parts = (Part(audio=audio),) if audio else (*_parts(body, None), *options,
                                                *_parts(navigation, None))
    return Script(language, tts, parts, Expect.KEY, digits=max(digits, len(NAV_BACK)),
                  timeout=timeout)


def _option(flow: Flow, option: Option, language: str, values: Mapping[str, str],
            answers: Mapping[str, str]) -> list[Part]:
    """"Pour <label>, tapez <key>."; an option choosing a language is said in that language."""
    target = flow.states.get(option.to)
    chosen = target.params.get("language", "") if target is not None and (
        target.action is Action.SET_LANGUAGE) else ""
    spoken_in = chosen if chosen in flow.languages else language
    label = fill(flow, option.label.get(spoken_in, ""), spoken_in, values, answers)
    text = say_filled(flow, flow.text("voice_press", spoken_in).replace("{label}", label)
                      .replace("{key}", option.key), spoken_in, values, answers)
    tts = tts_of(flow, spoken_in) if spoken_in != language else ""
    return [Part(text=chunk, tts=tts) for chunk in chunks(text)]


def _menu_from_lines(flow: Flow, language: str, lines: list[str]) -> Script:
    """A text that writes its own options ("1 Continuer"), spoken as a menu."""
    said: list[str] = []
    for line in lines:
        option = _OPTION_LINE.match(line.strip())
        if option is None:
            said.append(say_filled(flow, line, language, {}, {}))
            continue
        key, label = option.groups()
        said.append(say_filled(flow, flow.text("voice_press", language)
                               .replace("{label}", label).replace("{key}", key),
                               language, {}, {}))
    said.append(say_filled(flow, flow.text("voice_repeat", language), language, {}, {}))
    return Script(language, tts_of(flow, language), _parts(said, None), Expect.KEY,
                  timeout=_timeout(flow, language))


def _timeout(flow: Flow, language: str) -> tuple[Part, ...]:
    text = say_filled(flow, flow.text("voice_timeout", language), language, {}, {})
    return tuple(Part(text=chunk) for chunk in chunks(text))


def _parts(lines: list[str], audio: str | None) -> tuple[Part, ...]:
    if audio:
        return (Part(audio=audio),)
    return tuple(Part(text=chunk) for line in lines for chunk in chunks(line))
