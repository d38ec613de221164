"""Africa's Talking USSD: read the hop, check the callback URL's key, answer CON/END.

Africa's Talking does not sign requests; the callback URL registered with it
carries `?key=<HELPLINE_USSD_SECRET>`, compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from pydantic import SecretStr

from bot.engine.render import USSD_CONTINUE, USSD_END, Reply
from bot.errors import MalformedRequest
from bot.privacy import Sender

KEY_PARAMETER = "key"
TEXT_TYPE = "text/plain; charset=utf-8"
MAX_SESSION_ID = 128
MAX_HISTORY_CHARS = 4000
"""Every input of one session joined by `*`: a long return request stays far below."""


class UssdHop(NamedTuple):
    session_id: str
    phone: str
    text: str
    service_code: str = ""
    pseudonym: str = ""
    """The phone's pseudonym, as the sender field was read (`privacy.Senders`)."""

    @property
    def message_id(self) -> str:
        """The same session and history is the same hop, asked again."""
        return f"{self.session_id}\x1f{self.text}"


def key_matches(secret: SecretStr | None, given: str | None) -> bool:
    if secret is None:
        return True
    if given is None:
        return False
    return hmac.compare_digest(secret.get_secret_value().encode(), given.encode())


def read_hop(form: Mapping[str, Any], sender_of: Callable[[str], Sender | None]) -> UssdHop:
    """The hop of a form's fields (a dict or Starlette's `FormData`); `sender_of`: the
    E.164 of a sender field and its pseudonym, None when it is no phone number
    (`privacy.Senders.sender`)."""
    session_id = form.get("sessionId")
    raw_phone = form.get("phoneNumber")
    if (not isinstance(session_id, str) or not session_id or len(session_id) > MAX_SESSION_ID
            or not isinstance(raw_phone, str) or not raw_phone):
        if isinstance(session_id, str) and len(session_id) > MAX_SESSION_ID:
            raise MalformedRequest(f"sessionId is too long (over {MAX_SESSION_ID} characters)")
        raise MalformedRequest("sessionId and phoneNumber are required")
    text = form.get("text", "")
    if not isinstance(text, str) or len(text) > MAX_HISTORY_CHARS:
        raise MalformedRequest("text is too long")
    sender = sender_of(raw_phone)
    if sender is None:
        raise MalformedRequest("phoneNumber is not a phone number")
    return UssdHop(session_id, sender.phone, text, str(form.get("serviceCode", "")),
                   sender.pseudonym)


def screen(reply: Reply) -> str:
    """The response body: `CON …` while the session goes on, `END …` when it is over."""
    return (USSD_END if reply.end else USSD_CONTINUE) + reply.text
