"""`helpline flows check` for calls: Bambara screens without audio, spoken seconds, voice texts."""

from __future__ import annotations

import re
import wave
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.settings import DEFAULT_FLOW
from tests.factories import broken_copy


def run_check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["flows", "check", str(path)])
    return code, capsys.readouterr().out.splitlines()


def test_the_default_flow_lists_bambara_screens_without_audio_and_seconds_a_screen(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run_check(DEFAULT_FLOW, capsys)
    assert code == 0, lines
    missing = next(line for line in lines if line.startswith("voice: bm has no TTS voice"))
    assert "main" in missing.split(": ", 2)[2].split(", ")
    assert not any(line.startswith(("voice: fr has", "voice: en has")) for line in lines)
    main_menu = next(line for line in lines if line.startswith("voice: main: "))
    seconds = [int(s) for s in re.findall(r"(\d+) s", main_menu)]
    assert len(seconds) == 3 and all(5 <= s <= 30 for s in seconds), main_menu


def silence_wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 800)


def test_a_recorded_screen_is_no_longer_listed(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    def record_main(data: dict[str, Any]) -> None:
        data["states"]["main"]["audio"] = {"bm": "audio/bm/main.wav"}

    path = broken_copy(tmp_path, DEFAULT_FLOW, record_main)
    silence_wav(tmp_path / "audio" / "bm" / "main.wav")
    code, lines = run_check(path, capsys)
    assert code == 0, lines
    missing = next(line for line in lines if line.startswith("voice: bm has no TTS voice"))
    assert "main" not in missing.split(": ", 2)[2].split(", ")


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda data: data["states"]["main"].update(audio={"bm": "audio/none.mp3"}),
     "state 'main' [bm]: audio 'audio/none.mp3' is not a file under audio/"),
    (lambda data: data["states"]["main"].update(audio={"bm": "../helpline.yaml"}),
     "state 'main' [bm]: audio '../helpline.yaml' is not a file under audio/"),
    (lambda data: data["texts"].pop("voice_nav"), "missing text 'voice_nav'"),
    (lambda data: data["texts"]["voice_press"].update(en="Press {key}."),
     "text 'voice_press' [en]: needs {label}"),
    (lambda data: data["texts"]["voice_timeout"].update(fr="Police {contacts.nobody}"),
     "text 'voice_timeout' [fr]: unknown placeholder {contacts.nobody}"),
])
def test_voice_problems_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     mutate: Any, expected: str) -> None:
    code, lines = run_check(broken_copy(tmp_path, DEFAULT_FLOW, mutate), capsys)
    assert code == 1
    assert any(expected in line for line in lines), lines
