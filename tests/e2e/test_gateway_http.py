"""The gateways over real HTTP (uvicorn in a thread), against a Redis server that fails.

Each test here owns its Redis server, so stopping it leaves the other tests'
server alone. The HTTP client's 2-second timeout is docs/spec.md §4's deadline: an
answer that came later would fail the test.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from bot.app import create_app
from bot.settings import Settings
from tests.factories import default_flow
from tests.integration.webhooks_support import (
    PUBLIC_URL,
    Gateway,
    NoJobs,
    gateway_settings,
    said,
    screen,
)
from tests.redis_server import RedisServer, free_port

DEADLINE_SECONDS = 2.0
FLOW = default_flow().flow
FALLBACK_START = FLOW.text("fallback", "fr").split("{")[0]


class ServedApp:
    """`create_app(settings)` served by uvicorn on a loopback port, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(settings, case_jobs=NoJobs()), host="127.0.0.1",
                                port=self.port, log_config=None, access_log=False,
                                http="httptools", loop="uvloop")  # as `helpline serve`
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServedApp:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            self.thread.join(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)



@pytest.fixture
async def gateway(own_redis: RedisServer, tmp_path: Path) -> AsyncIterator[Gateway]:
    with ServedApp(gateway_settings(own_redis.url, tmp_path)) as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=DEADLINE_SECONDS) as client:
            yield Gateway(client)


async def test_a_signature_for_the_public_url_is_accepted_over_plain_http(
        gateway: Gateway) -> None:
    response = await gateway.sms("bonjour", signed_url=PUBLIC_URL + "/webhooks/twilio/sms")
    assert "Francais" in said(response)
    assert (await gateway.sms("bonjour", signed_url=None)).status_code == 403


async def test_with_redis_stopped_both_webhooks_answer_the_fallback_then_go_on(
        gateway: Gateway, own_redis: RedisServer) -> None:
    await gateway.dial("ATUid_1")
    await gateway.press("ATUid_1", "1")
    await gateway.press("ATUid_1", "2")
    await gateway.press("ATUid_1", "1")
    name_question = await gateway.press("ATUid_1", "Awa Diarra")
    assert "nationalit" in name_question.lower()
    assert "Francais" in await gateway.text("bonjour", phone="+22376000009")
    assert "Infos protection" in await gateway.text("1", phone="+22376000009")

    own_redis.stop()
    down = await gateway.press("ATUid_1", "Mali")
    assert down.startswith("END " + FALLBACK_START) and "17" in down
    assert said(await gateway.sms("2", phone="+22376000009")).startswith(FALLBACK_START)
    assert (await gateway.client.get("/readyz")).status_code == 503
    metrics = (await gateway.client.get("/metrics")).text
    assert 'helpline_fallbacks_total{channel="ussd",reason="store_down"}' in metrics

    own_redis.start()
    assert (await gateway.client.get("/readyz")).status_code == 200
    # SMS goes on from where it was: the main menu, where "2" is a return request.
    assert "J'accepte" in said(await gateway.sms("2", phone="+22376000009"))
    # USSD: the dropped session's return request is offered again, answers kept.
    resume = await gateway.dial("ATUid_2")
    assert "1 Continuer" in resume
    assert "nationalit" in (await gateway.press("ATUid_2", "1")).lower()


async def test_with_redis_hung_the_fallback_comes_within_the_deadline(
        gateway: Gateway, own_redis: RedisServer) -> None:
    await gateway.dial("ATUid_3")
    await gateway.press("ATUid_3", "1")
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)
    try:
        slow = await gateway.press("ATUid_3", "5")
        assert slow.startswith("END " + FALLBACK_START)
        assert said(await gateway.sms("5")).startswith(FALLBACK_START)
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    again = await gateway.dial("ATUid_4")
    assert "Infos protection" in again


async def test_probes_answer(gateway: Gateway) -> None:
    assert (await gateway.client.get("/healthz")).json() == {"status": "ok"}
    assert (await gateway.client.get("/readyz")).status_code == 200
    await gateway.dial("ATUid_5")
    metrics = await gateway.client.get("/metrics")
    assert metrics.status_code == 200
    for name in ("helpline_messages_total", "helpline_hop_seconds_bucket", "helpline_cases",
                 "helpline_queue_depth", "helpline_fallbacks_total",
                 "helpline_rate_limited_phones_total"):
        assert name in metrics.text


async def test_ussd_answers_are_plain_text_screens(gateway: Gateway) -> None:
    first = await gateway.dial("ATUid_6")
    assert first.startswith("CON ")
    response = await gateway.hop("ATUid_6", "")
    assert screen(response) == first
