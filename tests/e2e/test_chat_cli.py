"""`helpline chat` scripted on stdin, as a new user would run it (acceptance of issue 2)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cases.references import is_valid
from tests.redis_server import RedisServer

REFERENCE = re.compile(r"\b(\d{4})-(\d{4})\b")
RETURN_REQUEST = ["2", "1", "Moussa Keita", "Mali", "Libye", "Sebha",
                  "2", "1", "2", "2", "2", "1", "2", "1", "1"]
STATUS_WORDS = {"fr": "bien arrivée", "en": "received", "bm": "a sòròla"}  # bm in GSM-7
CHECK_NUMBER = {"fr": "Ce numéro n'est pas bon", "en": "This number is not right",
                "bm": "Nin nimòrò ma nyè"}


def chat(server: RedisServer, tmp_path: Path, inputs: list[str], *args: str) -> str:
    env = {**os.environ, "REDIS_URL": server.url, "HELPLINE_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", *args],
        input="\n".join(inputs) + "\n", capture_output=True, text=True, env=env, timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("language", ["fr", "en", "bm"])
def test_a_scripted_ussd_session_completes_a_return_request_and_follows_it(
        redis_server: RedisServer, tmp_path: Path, language: str) -> None:
    redis_server.flush()
    phone = "+22365000001"
    out = chat(redis_server, tmp_path, RETURN_REQUEST, "--channel", "ussd", "--phone", phone,
               "--lang", language)
    screens = out.split("\n> ")
    assert screens[0].startswith("CON ")
    for line in out.splitlines():
        if line.startswith("-- ") and " chars " in line:
            length = int(line.split()[1].split("/")[0])
            assert length <= 182 and ("GSM-7" in line or "UCS-2" in line) and "segment" in line
    last = screens[-1]
    assert "END " in last
    assert last.rstrip().endswith("the next line dials the code again (a new session) and is "
                                  "typed on its first screen")
    found = REFERENCE.search(last)
    assert found, last
    reference = found.group(0)
    assert is_valid(reference.replace("-", ""))

    follow = chat(redis_server, tmp_path, ["3", reference], "--channel", "ussd",
                  "--phone", phone)
    assert STATUS_WORDS[language] in follow.split("\n> ")[-1]

    digits = reference.replace("-", "")
    typo = digits[:3] + str((int(digits[3]) + 1) % 10) + digits[4:]
    swap = next(digits[:i] + digits[i + 1] + digits[i] + digits[i + 2:]
                for i in range(7) if digits[i] != digits[i + 1])
    for wrong in (typo, swap):
        answer = chat(redis_server, tmp_path, ["3", wrong], "--channel", "ussd",
                      "--phone", phone)
        assert CHECK_NUMBER[language] in answer.split("\n> ")[-1], answer


def test_sms_chat_shows_segments(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.flush()
    out = chat(redis_server, tmp_path, ["Bonjour", "1"], "--channel", "sms")
    assert "Bienvenue" in out
    assert re.search(r"-- \d+ chars · (GSM-7|UCS-2) · \d SMS segment", out)


def test_an_opted_out_phone_gets_no_reply_and_chat_says_so(redis_server: RedisServer,
                                                          tmp_path: Path) -> None:
    redis_server.flush()
    out = chat(redis_server, tmp_path, ["Bonjour", "STOP", "1", "START"], "--channel", "sms")
    screens = out.split("\n> ")
    assert screens[1].startswith("STOP\n") and "DEBUT" in screens[1]  # one confirmation
    assert screens[2].startswith("1\n-- (no reply")
    assert screens[3].startswith("START\n") and "de nouveau nos SMS" in screens[3]


def test_chat_over_voice_says_the_screens_and_takes_keys(redis_server: RedisServer,
                                                         tmp_path: Path) -> None:
    redis_server.flush()
    out = chat(redis_server, tmp_path, ["5", "*", "", ""], "--channel", "voice",
               "--phone", "+22365000009")
    assert "« Aide aux migrants »" in out  # a first call: the main menu at once
    assert "« Pour Urgence, tapez 5. »" in out
    assert out.count("Police: 1 7") == 3  # the screen, '*', then silence: said once more
    assert "(silence: said once more)" in out
    assert "Nous n'entendons rien." in out and out.rstrip().endswith("the call ends")
    assert re.search(r"-- about \d+ s \(fr-FR\) · press a key", out)
