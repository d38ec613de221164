"""The voice part of `helpline flows check`: spoken phrasing, recordings, seconds a screen.

A flow that declares `tts:` is spoken on calls. Its `voice_*` texts must be
complete; each screen should be said in at most `GOAL_SECONDS`; a language
with no TTS voice (Bambara) needs an `audio:` recording for every screen, and
each one missing is listed; a recording given as a file must exist under the
flow's `audio/` folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.engine.render import PLACEHOLDER
from bot.engine.speech import screen_script
from bot.flows.model import Flow, StateKind

VOICE_PREFIX = "voice_"
VOICE_TEXTS = ("voice_press", "voice_nav", "voice_repeat", "voice_digits", "voice_record",
               "voice_beep", "voice_recorded", "voice_timeout", "voice_hidden_number")
OWN_PLACEHOLDERS = {"voice_press": ("label", "key")}
GOAL_SECONDS = 20.0
AUDIO_FOLDER = "audio"


@dataclass
class VoiceReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per screen, per language: about how many seconds it takes to say."""
    without_audio: dict[str, list[str]] = field(default_factory=dict)
    """Per language with no TTS voice: the screens with no recording."""


def is_voice_text(name: str) -> bool:
    return name.startswith(VOICE_PREFIX)


def audio_file(flow: Flow, source: str) -> Path | None:
    """The local file a recording names (None for a URL)."""
    if source.startswith(("https://", "http://")):
        return None
    return flow.path.parent / AUDIO_FOLDER / source.removeprefix(f"{AUDIO_FOLDER}/")


def check_voice(flow: Flow, *, values: dict[str, str], answers: dict[str, str]) -> VoiceReport:
    report = VoiceReport()
    if not flow.tts:
        return report  # this flow is not spoken
    missing = [name for name in VOICE_TEXTS if name not in flow.texts]
    for name in missing:
        report.problems.append(f"{flow.path}: missing text '{name}' (voice calls need it)")
    for name, text in flow.texts.items():
        if is_voice_text(name):
            _placeholders(flow, name, text.items(), report)
    for language in flow.tts:
        if language not in flow.languages:
            report.problems.append(f"{flow.path}: tts: '{language}' is not one of the flow's")
    if missing:
        return report
    for state in flow.states.values():
        if state.kind is StateKind.ACTION:
            continue
        where = f"{flow.path}:{state.line}: state '{state.name}'"
        for language, source in state.audio.items():
            local = audio_file(flow, source)
            if local is not None and (not local.is_file() or not _inside(local, flow)):
                report.problems.append(f"{where} [{language}]: audio '{source}' is not a file "
                                       f"under {AUDIO_FOLDER}/")
        for language in flow.languages:
            sample = {**answers, **{s.save: "yes" for s in flow.states.values()
                                    if s.save and s.save not in answers}}
            script = screen_script(flow, state, language, values, sample)
            seconds = script.seconds
            report.seconds.setdefault(state.name, {})[language] = seconds
            if seconds > GOAL_SECONDS:
                report.notes.append(f"{where} [{language}]: spoken in about {seconds:.1f} s "
                                    f"(goal: at most {GOAL_SECONDS:.0f} s)")
            if language not in flow.tts and language not in state.audio:
                report.without_audio.setdefault(language, []).append(state.name)
    return report


def _inside(path: Path, flow: Flow) -> bool:
    return path.resolve().is_relative_to((flow.path.parent / AUDIO_FOLDER).resolve())


def _placeholders(flow: Flow, name: str, texts: Iterable[tuple[str, str]],
                  report: VoiceReport) -> None:
    own = OWN_PLACEHOLDERS.get(name, ())
    for language, words in texts:
        found = [match.group(1) for match in PLACEHOLDER.finditer(words)]
        for placeholder in found:
            head, _, rest = placeholder.partition(".")
            if placeholder in own or (head == "contacts" and rest in flow.contacts):
                continue
            report.problems.append(f"{flow.path}: text '{name}' [{language}]: unknown "
                                   f"placeholder {{{placeholder}}}")
        for needed in own:
            if needed not in found:
                report.problems.append(f"{flow.path}: text '{name}' [{language}]: needs "
                                       f"{{{needed}}}")
