"""Response headers every admin answer carries, whichever route (or 404) produced it.

- the console's files (`/admin`, `/admin/`, `/admin/static/…`): the console's
  security headers (CSP, frame blocking, no sniffing, no referrer);
- the admin API (`/admin/api/…`): `Cache-Control: no-store`, as its answers
  carry personal data (cases, the CSV, operators).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.admin.console import SECURITY_HEADERS

API_PATH = "/admin/api/"
CONSOLE_PATH = "/admin"
NO_STORE = {"Cache-Control": "no-store"}


def headers_for(path: str) -> dict[str, str]:
    if path.startswith(API_PATH):
        return NO_STORE
    if path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/"):
        return SECURITY_HEADERS
    return {}


class AdminHeaders:
    """Pure ASGI middleware adding `headers_for(path)` to answers that lack them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = headers_for(scope["path"]) if scope["type"] == "http" else {}
        if not wanted:
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in wanted.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, sending)
