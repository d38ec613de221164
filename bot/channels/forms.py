"""Gateway form bodies (`application/x-www-form-urlencoded`), read strictly and bounded."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import unquote

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from bot.errors import MalformedRequest, RequestTooLarge
from bot.privacy import normalise_phone

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 16 * 1024
"""Twilio and Africa's Talking bodies are a few hundred bytes."""
MAX_FIELDS = 64
KNOWN_SENDERS = 65_536
KNOWN_FIELDS = 4096
MAX_KNOWN_FIELD = 200


def require_form_type(content_type: str | None) -> None:
    """MalformedRequest unless `content_type` is a URL-encoded form's."""
    if content_type == FORM_TYPE:  # the gateways' own spelling: nothing to normalise
        return
    if (content_type or "").partition(";")[0].strip().lower() != FORM_TYPE:
        raise MalformedRequest(f"expected {FORM_TYPE}")


async def read_form(request: Request, max_bytes: int = MAX_BODY_BYTES) -> FormData:
    """The request's form fields; MalformedRequest (or RequestTooLarge) when unreadable."""
    require_form_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise RequestTooLarge(f"body over {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise RequestTooLarge(f"body over {max_bytes} bytes")
    return parse_form(bytes(body))


def parse_form(body: bytes) -> FormData:
    """Fields of a URL-encoded body whose values are UTF-8."""
    try:
        pairs: list[tuple[str, str | UploadFile]] = list(form_pairs(body.decode("ascii")))
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedRequest("the form is not URL-encoded UTF-8") from error
    return FormData(pairs)


def form_fields(body: bytes) -> dict[str, str]:
    """As `parse_form`, as a plain dict: a repeated name's last value, as `FormData.get`."""
    try:
        return dict(form_pairs(body.decode("ascii")))
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedRequest("the form is not URL-encoded UTF-8") from error


def form_pairs(text: str) -> list[tuple[str, str]]:
    """`parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)`,
    a field read once: a session's hops repeat most of theirs (`sessionId=…`, `text=1*2`)."""
    fields = text.split("&")
    if len(fields) > MAX_FIELDS:
        raise ValueError("Max number of fields exceeded")
    return [_known_field(field) if len(field) <= MAX_KNOWN_FIELD else _field(field)
            for field in fields if field]


def _field(field: str) -> tuple[str, str]:
    name, _, value = field.partition("=")
    return _decoded(name), _decoded(value)


_known_field = lru_cache(maxsize=KNOWN_FIELDS)(_field)
"""`_field`, remembered for fields up to `MAX_KNOWN_FIELD` characters (bounded memory)."""


def _decoded(part: str) -> str:
    """A name or value unescaped."""
    if "%" in part or "+" in part:
        return unquote(part.replace("+", " "), encoding="utf-8", errors="strict")
    return part


@lru_cache(maxsize=KNOWN_SENDERS)
def sender_phone(raw: str, default_region: str) -> str | None:
    """E.164 of a sender field; cached, as every hop of a session repeats it."""
    return normalise_phone(raw, default_region)
