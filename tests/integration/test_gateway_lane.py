"""The gateway lane (bot.channels.gateway): webhooks served in front of FastAPI's stack.

The real app on a real Redis: a failing handler answers its fallback, bodies
are bounded however they arrive, the access log keeps its shape without the
key or a number, and a plain Starlette route added to `ROUTES` gets the same
guarantees.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.app import create_app
from bot.channels import gateway as lane
from bot.channels import routes
from bot.channels.forms import MAX_BODY_BYTES
from bot.conversation import Conversation, Handled, InboundMessage
from bot.observability import JsonFormatter
from tests.integration.webhooks_support import (
    USSD_SECRET,
    Gateway,
    NoJobs,
    gateway_settings,
    running_app,
    screen,
)
from tests.redis_server import RedisServer

FORM = {"sessionId": "ATUid_lane", "serviceCode": "*384*55#", "phoneNumber": "+22376000042",
        "networkCode": "61001", "text": ""}


@pytest.fixture
async def gateway(redis: Redis, redis_server: RedisServer,
                  tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_app(gateway_settings(redis_server.url, tmp_path)) as gateway:
        yield gateway


@contextmanager
def json_stream() -> Iterator[io.StringIO]:
    """The logging set-up of `helpline serve` (one JSON stream handler), into a buffer.

    Entered in the test's body: pytest adds its capture handlers after fixtures ran.
    """
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


async def test_a_failing_handler_answers_the_fallback_not_a_5xx(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("a bug in reading the hop")

    monkeypatch.setattr(routes.ussd, "read_hop", broken)
    response = await gateway.hop("ATUid_bug", "")
    assert response.status_code == 200
    assert screen(response).startswith("END ")
    assert "Traceback" not in response.text and "bug" not in response.text
    assert any(record.exc_info for record in caplog.records if record.name == lane.__name__)


async def test_a_trailing_slash_is_redirected_to_the_webhook_as_before(gateway: Gateway) -> None:
    response = await gateway.client.post(routes.USSD_PATH + "/", params={"key": USSD_SECRET},
                                         data=FORM)
    assert response.status_code == 307
    assert response.headers["location"].endswith(routes.USSD_PATH + f"?key={USSD_SECRET}")


async def test_a_chunked_body_over_the_limit_is_413(gateway: Gateway) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"sessionId=ATUid_big&phoneNumber=%2B22376000042&text="
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"1" * 1024

    response = await gateway.client.post(
        routes.USSD_PATH, params={"key": USSD_SECRET}, content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413


async def test_webhook_answers_skip_fastapis_middleware(gateway: Gateway) -> None:
    admin = await gateway.client.get("/admin/api/v1/cases")
    assert "cache-control" in admin.headers  # the admin API's no-store, from its middleware
    hop = await gateway.hop("ATUid_plain", "")
    assert "cache-control" not in hop.headers
    assert hop.headers["content-type"] == "text/plain; charset=utf-8"
    assert int(hop.headers["content-length"]) == len(hop.content)


async def test_the_access_log_is_json_lines_without_key_or_number(gateway: Gateway) -> None:
    app_gateway = gateway.client._transport.app.gateway  # type: ignore[attr-defined]
    with json_stream() as stream:
        assert screen(await gateway.hop("ATUid_log", "")).startswith("CON ")
        assert (await gateway.hop("ATUid_log", "", key="wrong-key")).status_code == 403
        assert (await gateway.client.get(routes.USSD_PATH, params={"key": USSD_SECRET},
                                         )).status_code == 405
        assert "helpline.access" not in stream.getvalue()  # buffered until the next flush
        app_gateway.access.flush()
    json_stream_text = stream.getvalue()
    lines = [json.loads(line) for line in json_stream_text.splitlines()]
    access = [line for line in lines if line["logger"] == "helpline.access"]
    assert [(line["method"], line["status"]) for line in access] == [
        ("POST", 200), ("POST", 403), ("GET", 405)]
    for line in access:
        assert set(line) == {"time", "level", "logger", "message", "status", "method", "path",
                             "duration_ms"}
        assert line["path"] == routes.USSD_PATH + "?key=[redacted]"
        assert line["level"] == "info" and line["message"] == "request"
        # The fields' format (JsonFormatter's), not how long anything took.
        assert isinstance(line["duration_ms"], float)
        assert round(line["duration_ms"], 2) == line["duration_ms"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    logged = json_stream_text
    assert USSD_SECRET not in logged and "wrong-key" not in logged
    assert "22376000001" not in logged


async def test_a_starlette_route_added_to_the_lane_keeps_its_guarantees(
        redis: Redis, redis_server: RedisServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def echo(request: Request) -> Response:
        body = await request.body()
        if body == b"boom":
            raise RuntimeError("a bug")
        return PlainTextResponse(f"{len(body)} bytes", headers={"x-route": "echo"})

    monkeypatch.setattr(routes, "ROUTES", [*routes.ROUTES, Route("/webhooks/echo", echo)])
    app = create_app(gateway_settings(redis_server.url, tmp_path), case_jobs=NoJobs())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            ok = await http.post("/webhooks/echo", content=b"hello")
            assert (ok.status_code, ok.text, ok.headers["x-route"]) == (200, "5 bytes", "echo")
            failed = await http.post("/webhooks/echo", content=b"boom")
            assert failed.status_code == 200 and "bug" not in failed.text
            assert (await http.get("/webhooks/echo")).status_code == 405
            too_big = await http.post("/webhooks/echo", content=b"x" * (MAX_BODY_BYTES + 1))
            assert too_big.status_code == 413


async def test_a_hop_past_its_deadline_gets_the_fallback_in_time_and_is_counted(
        redis: Redis, redis_server: RedisServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def timeouts() -> float:
        return REGISTRY.get_sample_value("helpline_fallbacks_total",
                                         {"channel": "ussd", "reason": "timeout"}) or 0.0

    async def stuck(self: Conversation, message: InboundMessage) -> Handled:
        await asyncio.sleep(30)
        raise AssertionError("the deadline did not cut the hop short")

    monkeypatch.setattr(routes, "HOP_DEADLINE_SECONDS", 0.3)
    async with running_app(gateway_settings(redis_server.url, tmp_path)) as gateway:
        answered = await gateway.hop("ATUid_in_time", "")
        monkeypatch.setattr(Conversation, "process", stuck)
        before = timeouts()
        loop = asyncio.get_running_loop()
        started = loop.time()
        late = await asyncio.gather(*(gateway.hop(f"ATUid_late{n}", "") for n in range(3)))
        took = loop.time() - started
    assert screen(answered).startswith("CON ")
    assert all(screen(response).startswith("END ") for response in late)
    assert 0.29 <= took < 1.0
    assert timeouts() == before + 3


def _digit_runs(text: str) -> list[str]:
    """Runs of 8 digits or more in `text` (JSON lines: in their fields but the time),
    separators between them dropped."""
    if text.startswith("{"):
        lines = [json.loads(line) for line in text.splitlines()]
        text = "\n".join(str({**line, "time": ""}) for line in lines
                         if line["logger"] != "httpx")  # the test's client, not the app
    return re.findall(r"\d{8,}", re.sub(r"(?<=\d)[ .\-/+](?=\d)", "", text))


async def test_a_number_in_a_query_parameters_name_never_reaches_the_access_log(
        gateway: Gateway) -> None:
    """Names of query parameters are the caller's text like their values: scrubbed on the
    gateway lane (its own JSON, cached per path and query) and on FastAPI's alike."""
    app_gateway = gateway.client._transport.app.gateway  # type: ignore[attr-defined]
    queries = ("22376960005", f"key={USSD_SECRET}&%2B22376960002=1",
               "x=1&ZEBRA%2B22376960003=2", "%2B223%2076%2096%2000%2004", "0022376960006=")
    with json_stream() as stream:
        for query in queries:
            for _ in range(2):  # the second line comes from the lane's cache
                assert (await gateway.client.post(routes.SMS_PATH + "?" + query, data={
                    "MessageSid": "SM1", "From": "+22376000009"})).status_code == 403
                await gateway.client.post(routes.USSD_PATH + "?" + query, data=FORM)
                assert (await gateway.client.get("/healthz?" + query)).status_code == 200
        app_gateway.access.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "helpline.access"]
    assert len(access) == len(queries) * 2 * 3
    for line in access:
        assert _digit_runs(line["path"]) == [], line
        assert "[phone]" in line["path"], line
    assert USSD_SECRET not in stream.getvalue()
    assert _digit_runs(stream.getvalue().replace("+22376000042", "")) == []


@pytest.mark.parametrize("path", [routes.SMS_PATH, routes.STATUS_PATH,
                                  "/webhooks/twilio/voice"])
async def test_a_signature_algorithm_we_do_not_accept_is_refused_before_the_sdk_logs_it(
        gateway: Gateway, path: str) -> None:
    """`X-Twilio-Webhooks-Signature-Settings` is anyone's text: an algorithm other than
    Twilio's two is a 403 and the header is never written to a log line."""
    form = {"MessageSid": "SM1", "CallSid": "CA1", "From": "+22376510001",
            "MessageStatus": "delivered"}
    with json_stream() as stream:
        for settings in ("algorithm=ZEBRAALG+22376510009", "key=k,algorithm=SHA1 22376510008",
                         "algorithm=hmac_sha1-22376510007"):
            answer = await gateway.client.post(path, data=form, headers={
                "X-Twilio-Webhooks-Signature-Settings": settings, "X-Twilio-Signature": "x"})
            assert answer.status_code == 403
    logged = stream.getvalue()
    assert "ZEBRAALG" not in logged and "SHA1 " not in logged
    assert _digit_runs(logged) == [], logged
