"""The gateway lane: an ASGI dispatcher in front of the FastAPI app for the webhook paths.

A gateway request never enters FastAPI's stack (no middleware, no router, no
`Request`): the app (`bot.app.HelplineApp`) hands every request whose path is
a webhook's to `Gateway.serve`, which keeps, for every path alike:

- POST only: any other method is a 405 naming the allowed one, no traceback;
- the body read once and bounded: past `MAX_BODY_BYTES`, declared or sent, 413;
- a handler that fails answers its route's fallback (a 2xx), never a 5xx: the
  bug is logged with its traceback;
- one access-log line a request, structured like every other line, without
  the query string's secrets, written in batches (`AccessLines`).

Adding a webhook is one entry in `bot.channels.routes.ROUTES`: a `GatewayRoute`
(path, handler, fallback), or a plain Starlette `Route`, served through
`Request`/`Response` with the same guarantees.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from starlette.datastructures import URL, Headers, QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from bot import transport
from bot.bounded import Bounded
from bot.channels.forms import MAX_BODY_BYTES
from bot.errors import HelplineError, RequestTooLarge
from bot.observability import ACCESS_LOGGER, REJECTED, JsonFormatter, loggable_query

log = logging.getLogger(__name__)

TEXT_TYPE = b"text/plain; charset=utf-8"
FLUSH_SECONDS = 0.2
FLUSH_LINES = 256
KNOWN_PATHS = 256
"""Method, path, query and status whose logged JSON is kept (the webhook paths)."""
_MILLIS = [f'.{milli:03d}+00:00", ' for milli in range(1000)]
"""A line's time after the second (`JsonFormatter`'s ISO form, to the millisecond)."""
_CENTS = [f".{cents:02d}" for cents in range(100)]
CLIENT_GONE = 499
"""The access log's status of a request whose client left before it was answered."""


class ClientDisconnected(HelplineError):
    """The client went away before the whole body arrived."""


class Answer(NamedTuple):
    """A complete HTTP answer, sent in two ASGI messages (a tuple: made every hop)."""

    status: int
    body: bytes = b""
    content_type: bytes | None = TEXT_TYPE
    extra_headers: tuple[tuple[bytes, bytes], ...] = ()

    def headers(self, https: bool = False) -> list[tuple[bytes, bytes]]:
        """The response's headers, with bot/transport.py's (HSTS when the request came over
        `https`)."""
        headers = [*self.extra_headers, transport.NOSNIFF]
        if self.status != 204:
            headers.append((b"content-length", b"%d" % len(self.body)))
            if self.content_type is not None:
                headers.append((b"content-type", self.content_type))
        if https:
            headers.append(transport.HSTS)
        return headers


def text(body: str, status: int = 200, content_type: bytes = TEXT_TYPE) -> Answer:
    return Answer(status, body.encode(), content_type)


METHOD_NOT_ALLOWED = Answer(405, b"method not allowed: POST only",
                            extra_headers=((b"allow", b"POST"),))
TOO_LARGE = Answer(413, f"body over {MAX_BODY_BYTES} bytes".encode())


class GatewayRequest:
    """What a handler sees: the scope and the whole body; headers and query as Starlette
    reads them."""

    __slots__ = ("body", "scope")

    def __init__(self, scope: Scope, body: bytes) -> None:
        self.scope = scope
        self.body = body

    @property
    def headers(self) -> Headers:
        return Headers(scope=self.scope)

    @property
    def content_type(self) -> str | None:
        """The Content-Type header (the first), read without decoding the others."""
        for name, value in self.scope["headers"]:
            if name == b"content-type":
                return str(value.decode("latin-1"))
        return None

    @property
    def url(self) -> URL:
        return URL(scope=self.scope)

    @property
    def query_params(self) -> QueryParams:
        return QueryParams(self.scope.get("query_string", b""))


Handler = Callable[[Any, GatewayRequest], Awaitable[Answer]]
Fallback = Callable[[Any, GatewayRequest], Answer]


def plain_fallback(hooks: Any, request: GatewayRequest) -> Answer:
    """The emergency numbers as plain text, for a route that brings no fallback of its own."""
    return text(hooks.fallback_text())


@dataclass(frozen=True)
class GatewayRoute:
    """A webhook: `handler(webhooks, request)`; `fallback` answers when the handler fails."""

    path: str
    handler: Handler
    fallback: Fallback = plain_fallback
    channel: str = "other"
    """The `channel` label of the route's rejections (413)."""

    @classmethod
    def starlette(cls, route: Route, fallback: Fallback = plain_fallback,
                  channel: str = "other") -> GatewayRoute:
        """A Starlette route's endpoint (`Request` -> `Response`) in the lane."""
        endpoint: Callable[[Request], Awaitable[Response]] = route.endpoint

        async def handle(hooks: Any, request: GatewayRequest) -> Answer:
            body = request.body

            async def receive() -> Message:
                return {"type": "http.request", "body": body, "more_body": False}

            response = await endpoint(Request(request.scope, receive))
            if isinstance(response, Answer):
                return response
            return Answer(response.status_code, bytes(response.body), content_type=None,
                          extra_headers=tuple(
                              (name, value) for name, value in response.raw_headers
                              if response.status_code != 204 or name != b"content-length"))

        return cls(route.path, handle, fallback, channel)


class AccessLines:
    """The access log of the gateway lane: one JSON line a request, written in batches.

    A line has the fields `JsonFormatter` would give it. While the access logger
    ends in the one JSON stream handler of `configure_logging`, lines are
    formatted here and written every `FLUSH_SECONDS` (or `FLUSH_LINES`); with any
    other logging set-up (a test's capture, a deployer's handler) each request
    is an ordinary log record.
    """

    def __init__(self) -> None:
        self.log = logging.getLogger(ACCESS_LOGGER)
        self.lines: list[str] = []
        self._flush_at: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""
        self._fields: Bounded[tuple[str, str, bytes, int], str] = Bounded(KNOWN_PATHS)

    def request(self, scope: Scope, status: int, started: float) -> None:
        """The line of the request of `scope`, answered `status` (its handling began at
        `started`, `time.perf_counter()`)."""
        if not self.log.isEnabledFor(logging.INFO):
            return
        hundredths = int((time.perf_counter() - started) * 100_000)  # of a millisecond
        method: str = scope["method"]
        path: str = scope["path"]
        query: bytes = scope.get("query_string", b"")
        if self._json_handler() is None:
            self.log.info("request", extra={"method": method, "path": logged_path(path, query),
                                            "status": status, "duration_ms": hundredths / 100})
            return
        fields = self._fields.get((method, path, query, status))
        if fields is None:
            fields = (f'"level": "info", "logger": "{ACCESS_LOGGER}", "message": "request", '
                      f'"status": {status}, "method": {json.dumps(method)}, '
                      f'"path": {json.dumps(logged_path(path, query), ensure_ascii=False)}, '
                      '"duration_ms": ')
            self._fields.put((method, path, query, status), fields)
        second, milli = divmod(int(time.time() * 1000), 1000)
        if second != self._second:
            self._second = second
            self._stamp = ('{"time": "'
                           + datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        self.lines.append(f"{self._stamp}{_MILLIS[milli]}{fields}"
                          f"{hundredths // 100}{_CENTS[hundredths % 100]}}}")
        if len(self.lines) >= FLUSH_LINES:
            self.flush()
        elif self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if not self.lines:
            return
        lines, self.lines = self.lines, []
        handler = self._json_handler()
        if handler is None:
            for line in lines:
                self.log.info("request %s", line)
            return
        handler.acquire()
        try:
            handler.stream.write("\n".join(lines) + "\n")
            handler.flush()
        except (OSError, ValueError):
            pass  # stderr closed: nothing to log to
        finally:
            handler.release()

    def _json_handler(self) -> logging.StreamHandler[Any] | None:
        logger = self.log
        if logger.handlers or logger.filters or not logger.propagate:
            return None
        root = logging.getLogger()
        if logger.parent is not root or len(root.handlers) != 1 or root.filters:
            return None
        handler = root.handlers[0]
        if (type(handler) is not logging.StreamHandler or handler.filters
                or not isinstance(handler.formatter, JsonFormatter)
                or handler.level > logging.INFO):
            return None
        return handler


def logged_path(path: str, query: bytes) -> str:
    """The path and query as the access log shows them: the USSD key and unknown values
    redacted, numbers masked in names too (`loggable_query`: the scrub of every line).
    `path` is one of the lane's own; built once per path and query (`AccessLines`)."""
    if not query:
        return path
    if query.startswith(b"key=") and b"&" not in query:
        return path + "?key=[redacted]"
    return f"{path}?{loggable_query(query.decode('latin-1'))}"


class _Lane:
    """One webhook path as an ASGI app (for the router)."""

    def __init__(self, gateway: Gateway, route: GatewayRoute) -> None:
        self.gateway = gateway
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.gateway.serve(self.route, scope, receive, send)


async def read_body(scope: Scope, receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body; RequestTooLarge past `limit` (declared or sent)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise RequestTooLarge(f"body over {limit} bytes")
    message = await receive()
    if message["type"] != "http.request":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise RequestTooLarge(f"body over {limit} bytes")
        return body
    chunks = bytearray(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnected
        chunks += message.get("body", b"")
        if len(chunks) > limit:
            raise RequestTooLarge(f"body over {limit} bytes")
        if not message.get("more_body", False):
            return bytes(chunks)


class Gateway:
    """The webhook paths and how each is served; `hooks` is set when the app starts."""

    def __init__(self, routes: Iterable[GatewayRoute | Route]) -> None:
        self.paths: dict[str, GatewayRoute] = {}
        for route in routes:
            lane = route if isinstance(route, GatewayRoute) else GatewayRoute.starlette(route)
            self.paths[lane.path] = lane
        self.hooks: Any = None
        self.access = AccessLines()

    def router_routes(self) -> list[Route]:
        """The webhook paths for FastAPI's router too: requests for them never get there
        (the app hands them to the lane first), but the router's trailing-slash redirect
        (`/webhooks/twilio/sms/` → 307) still knows them."""
        return [Route(path, _Lane(self, route)) for path, route in self.paths.items()]

    async def serve(self, route: GatewayRoute, scope: Scope, receive: Receive,
                    send: Send) -> None:
        started = time.perf_counter()
        status = CLIENT_GONE
        try:
            if scope["method"] != "POST":
                answer = METHOD_NOT_ALLOWED
            else:
                try:
                    body = await read_body(scope, receive)
                except RequestTooLarge:
                    REJECTED.labels(route.channel, "413").inc()
                    answer = TOO_LARGE
                else:
                    request = GatewayRequest(scope, body)
                    try:
                        answer = await route.handler(self.hooks, request)
                    except ClientDisconnected:
                        raise
                    except Exception:
                        # Last resort, on purpose: the gateway gets the route's fallback,
                        # never a 5xx; the bug is logged with its traceback.
                        log.exception("webhook failed", extra={"path": route.path})
                        answer = route.fallback(self.hooks, request)
            status = answer.status
            await send({"type": "http.response.start", "status": status,
                        "headers": answer.headers(transport.over_https(scope))})
            await send({"type": "http.response.body", "body": answer.body})
        except ClientDisconnected:
            pass
        finally:
            self.access.request(scope, status, started)
