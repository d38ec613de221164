"""A case reference in an admin API path: described once, checked once (422 naming it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from fastapi.exceptions import RequestValidationError

from bot.cases.references import parse_reference
from bot.errors import InvalidReference

ReferencePath = Annotated[str, Path(
    description="A case reference: 8 digits, the last a check digit (Damm algorithm), "
    "with or without `-` and spaces (`1234-5678`). A wrong check digit is a 422.",
    pattern=r"^[ -]*(?:[0-9][ -]*){8}$",
    examples=["1234-5671"],
)]


def path_reference(raw: str) -> str:
    """The plain 8 digits of a path's reference; a 422 naming `reference` when malformed."""
    try:
        return parse_reference(raw)
    except InvalidReference:
        raise RequestValidationError(
            [
                {
                    "type": "invalid_reference",
                    "loc": ("path", "reference"),
                    "msg": "a reference is 8 digits, the last a check digit",
                    "input": raw,
                }
            ]
        ) from None
