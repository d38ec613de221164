"""`helpline flows check` on the default flow and on broken copies of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.settings import DEFAULT_FLOW
from tests.factories import MINI_FLOW, broken_copy

Mutation = Callable[[dict[str, Any]], None]


def run_check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["flows", "check", str(path)])
    return code, capsys.readouterr().out.splitlines()


def test_the_default_flow_passes_and_reports_encodings(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run_check(DEFAULT_FLOW, capsys)
    assert code == 0, lines
    for language in ("fr", "en", "bm"):
        summary = next(line for line in lines if line.startswith(f"{language}: "))
        assert "GSM-7" in summary and "UCS-2" in summary and "SMS segments" in summary
        assert "0 UCS-2" in summary  # Bambara too: written in GSM-7 on SMS and USSD


def drop_translation(data: dict[str, Any]) -> None:
    del data["states"]["name"]["ask"]["en"]


def orphan_state(data: dict[str, Any]) -> None:
    data["states"]["orphan"] = {"end": True, "say": {"fr": "Seul", "en": "Alone"}}


def overlong_screen(data: dict[str, Any]) -> None:
    data["states"]["refused"]["say"]["fr"] = "Rien n'est gardé. " * 12


def option_to_nowhere(data: dict[str, Any]) -> None:
    data["states"]["main"]["options"][0]["to"] = "nowhere"


def dead_end(data: dict[str, Any]) -> None:
    data["states"]["refused"] = {"say": {"fr": "Rien.", "en": "Nothing."}}


def overlong_options(data: dict[str, Any]) -> None:
    data["states"]["main"]["options"][0]["label"]["en"] = "Information " * 15


def ucs2_options(data: dict[str, Any]) -> None:
    # 86 characters of options: fine in GSM-7, over the 80 a UCS-2 USSD screen holds.
    data["states"]["main"]["options"][0]["label"]["en"] = "Information, forêt " * 3


def ucs2_end_screen(data: dict[str, Any]) -> None:
    data["states"]["refused"]["say"]["fr"] = "Rien n'est gardé, c'est sûr. " * 3


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (drop_translation, ["state 'name': missing translation 'en'"]),
        (orphan_state, ["state 'orphan': unreachable from 'main'"]),
        (overlong_screen, ["state 'refused' [fr]: an END screen must fit one USSD screen"]),
        (option_to_nowhere, ["state 'main': option 1 leads to 'nowhere', which is not a state",
                             "state 'info': unreachable from 'main'"]),
        (dead_end, ["state 'refused': dead end: no options and not `end: true`"]),
        (overlong_options,
         ["state 'main' [en]: USSD screen over 182 chars (GSM-7) after pagination"]),
        (ucs2_options,
         ["state 'main' [en]: USSD screen over 80 chars (UCS-2) after pagination"]),
        (ucs2_end_screen,
         ["state 'refused' [fr]: an END screen must fit one USSD screen (80 chars in UCS-2;"]),
    ],
)
def test_a_broken_flow_fails_with_one_precise_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate: Mutation, expected: list[str]
) -> None:
    path = broken_copy(tmp_path, MINI_FLOW, mutate)
    code, lines = run_check(path, capsys)
    assert code == 1
    problems = [line for line in lines if line.startswith(str(path) + ":") and
                not line.endswith("problem(s)")]
    assert len(problems) == len(expected), lines
    for problem, wanted in zip(problems, expected, strict=True):
        assert wanted in problem
        assert problem.split(":")[1].isdigit(), "each problem names its line"


def test_an_sms_over_three_segments_is_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    def ucs2_essay(data: dict[str, Any]) -> None:
        data["states"]["refused"] = {"say": {"fr": "ɛ" * 250, "en": "ok"}, "end": True}

    code, lines = run_check(broken_copy(tmp_path, MINI_FLOW, ucs2_essay), capsys)
    assert code == 1
    assert any("state 'refused' [fr]: SMS over 3 segments" in line for line in lines)


def test_a_yaml_error_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("states: [unclosed\n", encoding="utf-8")
    code, lines = run_check(path, capsys)
    assert code == 1
    assert lines[0].startswith(f"{path}: not valid YAML")


def test_the_graph_is_mermaid_from_the_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "graph", str(MINI_FLOW)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("stateDiagram-v2\n")
    assert "    main --> consent: 2" in out
    assert "    lookup --> track_missing: missing" in out
