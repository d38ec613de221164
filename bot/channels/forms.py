"""Gateway form bodies (`application/x-www-form-urlencoded`), read strictly.

The body was read whole and bounded by the gateway lane (`MAX_BODY_BYTES`).
"""

from __future__ import annotations

import codecs
from urllib.parse import unquote_to_bytes

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from bot.errors import MalformedRequest
from bot.privacy import normalise_phone

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 16 * 1024
"""Twilio and Africa's Talking bodies are a few hundred bytes."""
MAX_FIELDS = 64


def require_form_type(content_type: str | None) -> None:
    """MalformedRequest unless `content_type` is a URL-encoded form's."""
    if content_type == FORM_TYPE:  # the gateways' own spelling: nothing to normalise
        return
    if (content_type or "").partition(";")[0].strip().lower() != FORM_TYPE:
        raise MalformedRequest(f"expected {FORM_TYPE}")


async def read_form(request: Request) -> FormData:
    """A Starlette route's form fields (the lane read its body); MalformedRequest when
    unreadable."""
    require_form_type(request.headers.get("content-type"))
    return parse_form(await request.body())


def parse_form(body: bytes) -> FormData:
    """As `form_fields`, as Starlette's `FormData` (what Twilio's signature check reads)."""
    pairs: list[tuple[str, str | UploadFile]] = [*form_pairs(body)]
    return FormData(pairs)


def form_fields(body: bytes) -> dict[str, str]:
    """The fields of a URL-encoded body whose values are UTF-8 (a repeated name's last
    value, as `FormData.get`)."""
    fields = _unescaped(body)
    if fields is None:
        return dict(form_pairs(body))
    form = {}
    for field in fields:
        if field:  # as `form_pairs`: an empty field is skipped, a field with no `=` is blank
            name, _, value = field.partition("=")
            form[name] = value
    return form


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """What `parse_qsl(text, keep_blank_values=True, errors="strict",
    max_num_fields=MAX_FIELDS)` reads."""
    fields = _unescaped(body)
    if fields is not None:
        return [field.partition("=")[::2] for field in fields if field]
    try:
        return [(_unquoted(name), _unquoted(value)) for name, _, value
                in (field.partition("=") for field in body.decode("ascii").replace(
                    "+", " ").split("&") if field)]
    except UnicodeDecodeError as error:
        raise MalformedRequest("the form is not URL-encoded UTF-8") from error


def _unescaped(body: bytes) -> list[str] | None:
    """The body's fields, unescaped, when it has no escaped `&` or `=` (`%26`, `%3D`: a
    gateway's, but for a typed one): unescaped whole, then split. None for any other (read
    field by field); MalformedRequest when it is no form."""
    try:
        text = body.decode("ascii").replace("+", " ")
        if text.count("&") >= MAX_FIELDS:
            raise MalformedRequest(f"more than {MAX_FIELDS} form fields")
        if "%" in text:
            if "%26" in text or ("%3" in text and ("%3D" in text or "%3d" in text)):
                return None
            text = _unquoted(text)
        return text.split("&")
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedRequest("the form is not URL-encoded UTF-8") from error


def _unquoted(text: str) -> str:
    """`unquote(text, errors="strict")` of an ASCII `text`. Each `%hh` made a `\\xhh`
    escape, decoded in C (a third of unquote's time on a USSD history, `%2A` a key); a
    text holding a backslash or a `%` that is no escape is read by `unquote_to_bytes`."""
    if "\\" not in text:
        try:
            decoded: str = codecs.unicode_escape_decode(text.replace("%", "\\x"))[0]
            return decoded if decoded.isascii() else decoded.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            pass  # `%` with no two hex digits after it (kept as is), or no UTF-8
    return unquote_to_bytes(text).decode("utf-8")


def sender_phone(raw: str, default_region: str) -> str | None:
    """E.164 of a sender field, None when it is no phone number."""
    return normalise_phone(raw, default_region)
