"""Headers every answer carries about how it travelled, on both lanes (the gateway lane,
bot/channels/gateway.py, and FastAPI's stack, bot/admin/headers.py):

- `X-Content-Type-Options: nosniff` on every answer: a browser never runs an API's JSON
  or a webhook's text as something else;
- `Strict-Transport-Security` on every answer that came over HTTPS (the ASGI scope's
  scheme: `https` when the trusted proxy says `X-Forwarded-Proto: https`,
  docs/deployment.md): a browser that reached the console once over HTTPS never again
  tries plain HTTP for a year. Over plain HTTP browsers ignore it, so it is not sent.
"""

from __future__ import annotations

from starlette.types import Scope

HSTS_SECONDS = 365 * 24 * 3600
"""A year: more than the 180 days browsers' preload lists and scanners ask for."""
NOSNIFF = (b"x-content-type-options", b"nosniff")
HSTS = (b"strict-transport-security", b"max-age=%d" % HSTS_SECONDS)


def over_https(scope: Scope) -> bool:
    return bool(scope.get("scheme") == "https")
