"""`bot.types.statically_frozen`: a hop's value classes are frozen to the type checker
and behave as frozen dataclasses do (equal and hashable by their fields)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

from bot.engine.receipts import Answer, Receipts
from bot.engine.render import Reply

ROOT = Path(__file__).resolve().parents[2]


def test_equal_and_hashable_by_their_fields() -> None:
    receipts = Receipts((Answer("d1", "text"),), ussd_session="s")
    same = Receipts((Answer("d1", "text"),), ussd_session="s")
    assert receipts == same and hash(receipts) == hash(same)
    assert {Reply("a"): 1}[Reply("a")] == 1
    assert Reply("a") != Reply("a", end=True)


def test_mypy_refuses_an_assignment_to_a_field(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text("from bot.engine.render import Reply\n\n"
                       "reply = Reply('a')\nreply.text = 'b'\n")
    out, _, status = api.run([str(snippet), "--strict", "--no-error-summary",
                              "--cache-dir", str(tmp_path / "cache")])
    assert status == 1
    assert 'Property "text" defined in "Reply" is read-only' in out
