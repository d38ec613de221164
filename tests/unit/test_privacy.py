"""Who a sender is: E.164, or no one (not a number, or a withheld caller ID's stand-in)."""

from __future__ import annotations

import pytest

from bot.privacy import normalise_phone


@pytest.mark.parametrize("raw", [
    "+266696687", "+86282452253", "+7378742833", "+17378742833", "+2562533", "+8656696",
    "0086282452253", "+86 282 452 253", "whatsapp:+86282452253", " +1 737 874 2833 ",
    "0017378742833", "+1 (737) 874-2833",
])
def test_a_stand_in_for_a_withheld_caller_id_is_no_one_however_written(raw: str) -> None:
    assert normalise_phone(raw, "ML") is None


@pytest.mark.parametrize(("raw", "e164"), [
    ("+17378742834", "+17378742834"),  # next to RESTRICTED: a caller
    ("+86282452254", "+86282452254"),
    ("76 00 00 01", "+22376000001"),
    ("whatsapp:+22376000001", "+22376000001"),
])
def test_a_number_next_to_a_stand_in_is_a_number(raw: str, e164: str) -> None:
    assert normalise_phone(raw, "ML") == e164


@pytest.mark.parametrize("raw", ["anonymous", "", "+", "12", "SHORTCODE"])
def test_what_is_no_phone_number_is_no_one(raw: str) -> None:
    assert normalise_phone(raw, "ML") is None
