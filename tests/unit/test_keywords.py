"""SMS keywords: whole messages, any case, any accents, in fr/en/bm."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.engine.keywords import Keyword, KeywordMatch, recognise


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("MENU", Keyword.MENU), ("menu", Keyword.MENU), ("Aide", Keyword.MENU),
        ("help", Keyword.MENU), ("STOP", Keyword.STOP), (" stop ", Keyword.STOP),
        ("Arrêt", Keyword.STOP), ("ARRET", Keyword.STOP), ("arret.", Keyword.STOP),
        ("Stop!", Keyword.STOP), ("START", Keyword.START), ("Début", Keyword.START),
        ("DEBUT", Keyword.START), ("debut", Keyword.START), ("EFFACER", Keyword.ERASE),
        ("effacer", Keyword.ERASE), ("Delete", Keyword.ERASE), ("SUIVI", Keyword.TRACK),
        ("ＳＴＯＰ", Keyword.STOP),  # full-width letters, as some phones send them
    ],
)
def test_keywords_are_recognised_whatever_the_case_and_accents(text: str, keyword: Keyword) -> None:
    assert recognise(text) == KeywordMatch(keyword)


@pytest.mark.parametrize(
    "text", ["SUIVI 1234-5678", "suivi 12345678", "Suivi: 1234 5678", "SUIVI1234-5678",
             "suivi  1234-5678 "],
)
def test_suivi_carries_the_reference_that_follows(text: str) -> None:
    match = recognise(text)
    assert match is not None and match.keyword is Keyword.TRACK
    assert "".join(ch for ch in match.argument if ch.isdigit()) == "12345678"


@pytest.mark.parametrize(
    "text", ["", "1", "00", "98", "stop the bus", "Amadou", "menus", "STOPP", "arrête-toi",
             "start now", "Mali", "x" * 500, "STOP" * 30, "délai"],
)
def test_other_messages_are_not_keywords(text: str) -> None:
    assert recognise(text) is None


@given(st.text(max_size=200))
def test_any_text_is_recognised_or_not_without_error(text: str) -> None:
    match = recognise(text)
    assert match is None or isinstance(match.keyword, Keyword)
