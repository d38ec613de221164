"""Response headers every answer of FastAPI's stack carries, whichever route (or 404)
produced it (the gateway lane adds the same transport headers itself, bot/channels/gateway.py):

- every answer: bot/transport.py's (`nosniff`; HSTS when it came over HTTPS);
- the console's files (`/admin`, `/admin/`, `/admin/static/…`): the console's
  security headers (CSP, frame blocking, no sniffing, no referrer);
- the admin API (`/admin/api/…`): `Cache-Control: no-store`, as its answers
  carry personal data (cases, the CSV, operators).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import transport
from bot.admin.console import SECURITY_HEADERS

API_PATH = "/admin/api/"
CONSOLE_PATH = "/admin"
NO_STORE = {"Cache-Control": "no-store"}


def _text(header: tuple[bytes, bytes]) -> tuple[str, str]:
    return header[0].decode(), header[1].decode()


_TRANSPORT = dict([_text(transport.NOSNIFF)])
_OVER_HTTPS = dict([_text(transport.NOSNIFF), _text(transport.HSTS)])


def headers_for(path: str) -> dict[str, str]:
    """The headers of the admin paths (none elsewhere)."""
    if path.startswith(API_PATH):
        return NO_STORE
    if path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/"):
        return SECURITY_HEADERS
    return {}


class AdminHeaders:
    """Pure ASGI middleware adding the transport headers and `headers_for(path)` to
    answers that lack them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = {**(_OVER_HTTPS if transport.over_https(scope) else _TRANSPORT),
                  **headers_for(scope["path"])}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in wanted.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, sending)
