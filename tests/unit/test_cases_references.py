from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cases.references import (
    check_digit,
    draw_reference,
    format_reference,
    is_valid,
    parse_reference,
)
from bot.errors import InvalidReference

bodies = st.text(alphabet="0123456789", min_size=7, max_size=7)


@given(bodies)
def test_a_body_with_its_check_digit_is_valid(body: str) -> None:
    assert parse_reference(body + check_digit(body)) == body + check_digit(body)


@given(bodies, st.integers(0, 7), st.integers(1, 9))
def test_every_single_digit_substitution_is_detected(body: str, position: int, shift: int) -> None:
    reference = body + check_digit(body)
    wrong = str((int(reference[position]) + shift) % 10)
    typo = reference[:position] + wrong + reference[position + 1 :]
    with pytest.raises(InvalidReference):
        parse_reference(typo)


@given(bodies, st.integers(0, 6))
def test_every_adjacent_transposition_is_detected(body: str, position: int) -> None:
    reference = body + check_digit(body)
    a, b = reference[position], reference[position + 1]
    if a == b:
        return
    swapped = reference[:position] + b + a + reference[position + 2 :]
    with pytest.raises(InvalidReference):
        parse_reference(swapped)


def test_known_damm_check_digit() -> None:
    # The worked example of the Damm algorithm: 572 → check digit 4.
    assert check_digit("572") == "4"


@pytest.mark.parametrize("typed", ["1234-5678", " 1234 5678 ", "12345678", "1234 - 5678"])
def test_separators_and_spaces_are_accepted(typed: str) -> None:
    reference = "1234567" + check_digit("1234567")
    typed = typed.replace("5678", reference[4:]).replace("1234", reference[:4])
    assert parse_reference(typed) == reference


@pytest.mark.parametrize("typed", ["", "1234567", "123456789", "1234-567a", "١٢٣٤٥٦٧٨", "abcdefgh"])
def test_wrong_length_or_non_digits_are_refused(typed: str) -> None:
    with pytest.raises(InvalidReference):
        parse_reference(typed)


def test_format_shows_the_dash() -> None:
    reference = "7654321" + check_digit("7654321")
    assert format_reference(reference) == f"{reference[:4]}-{reference[4:]}"


@given(st.integers(0, 1000))
def test_drawn_references_are_valid(_: int) -> None:
    assert is_valid(draw_reference())
