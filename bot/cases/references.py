"""Case references: 8 digits, the last a Damm check digit, shown as `1234-5678`.

The Damm algorithm detects every single-digit error and every adjacent
transposition, the two typos a migrant makes on a keypad.
"""

from __future__ import annotations

import secrets

from bot.errors import InvalidReference

REFERENCE_DIGITS = 8
_BODY_DIGITS = REFERENCE_DIGITS - 1
_SEPARATORS = str.maketrans("", "", "- \t")

# The weakly totally anti-symmetric quasigroup of order 10 from Damm (2004).
_DAMM_TABLE = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def _interim(digits: str) -> int:
    interim = 0
    for char in digits:
        interim = _DAMM_TABLE[interim][int(char)]
    return interim


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def check_digit(digits: str) -> str:
    """The Damm check digit of a string of ASCII digits."""
    if not _is_ascii_digits(digits):
        raise ValueError("check_digit takes ASCII digits only")
    return str(_interim(digits))


def is_valid(reference: str) -> bool:
    """True for 8 ASCII digits whose last is the Damm check digit of the first 7."""
    return (
        len(reference) == REFERENCE_DIGITS
        and _is_ascii_digits(reference)
        and _interim(reference) == 0
    )


def parse_reference(text: str) -> str:
    """The plain 8 digits of a reference typed with or without `-` and spaces.

    Raises InvalidReference on a wrong length, a non-digit or a bad check digit.
    """
    compact = text.strip().translate(_SEPARATORS)
    if not is_valid(compact):
        raise InvalidReference("wrong length, non-digit or bad check digit")
    return compact


def format_reference(reference: str) -> str:
    """`12345678` → `1234-5678`, the form shown to migrants."""
    plain = parse_reference(reference)
    return f"{plain[:4]}-{plain[4:]}"


_BODY_SPAN = 10**_BODY_DIGITS


def draw_reference(*, residue: int = 0, modulus: int = 1) -> str:
    """A fresh random reference: 7 digits from `secrets` and their check digit.

    The 7 digits, as a number, are `residue` modulo `modulus` (the store draws a
    case's reference in the shard it writes to).
    """
    if not 0 <= residue < modulus:
        raise ValueError("residue must be in [0, modulus)")
    number = secrets.randbelow(_BODY_SPAN // modulus) * modulus + residue
    body = f"{number:0{_BODY_DIGITS}d}"
    return body + check_digit(body)
