"""Alerts to subscribers who subscribed on WhatsApp (docs/spec.md §10): the Content
template outside the 24-hour window, a free-form message within it, and SMS to the same
number with no template for the language or when Twilio refuses it (63016), at once or in
a later status report."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from bot.outreach.subscriptions import AlertChannel
from bot.settings import Settings
from tests.fake_twilio import FROM_NUMBER, TEMPLATE_TEXT, Fail, FakeTwilio
from tests.integration.broadcast_support import T0, TEXTS, seed_subscribers
from tests.integration.test_broadcasts_sending import (  # noqa: F401 (fixtures)
    app,
    app_settings,
    approved,
    fake,
    post_status,
    read,
    settings_of_worker,
    tokens,
)
from tests.integration.webhooks_support import PII_KEY, Gateway
from tests.integration.worker_support import Clock, Harness, harness

pytestmark = pytest.mark.deployments

FR_TEMPLATE = "HX" + "f" * 32
EN_TEMPLATE = "HX" + "e" * 32


@pytest.fixture
async def whatsapp_worker(app_settings: Settings, fake: FakeTwilio  # noqa: F811
                          ) -> AsyncIterator[Harness]:
    templates = f"fr={FR_TEMPLATE},en={EN_TEMPLATE}"
    async with harness(settings_of_worker(app_settings, fake,
                                          whatsapp_alert_template=templates),
                       clock=Clock(T0)) as found:
        yield found


async def subscribe_on_whatsapp(redis: Redis, plan: list[tuple[str, str]]) -> list[str]:
    return await seed_subscribers(redis, PII_KEY.encode(), plan, channel=AlertChannel.WHATSAPP)


async def test_outside_the_window_the_content_template_carries_the_alert(
        app: Any, whatsapp_worker: Harness, fake: FakeTwilio, tokens: dict[str, str],  # noqa: F811
        redis: Redis) -> None:
    (phone,) = await subscribe_on_whatsapp(redis, [("NE", "fr")])
    await approved(app, tokens)
    await whatsapp_worker.run_jobs()
    (sent,) = fake.creates
    assert sent.form["To"] == f"whatsapp:{phone}"
    assert sent.form["From"] == f"whatsapp:{FROM_NUMBER}"
    assert sent.form["ContentSid"] == FR_TEMPLATE
    assert json.loads(sent.form["ContentVariables"]) == {"1": TEXTS["fr"]}
    assert "Body" not in sent.form


async def test_no_template_for_the_language_means_sms_to_the_same_number(
        app: Any, whatsapp_worker: Harness, fake: FakeTwilio, tokens: dict[str, str],  # noqa: F811
        redis: Redis) -> None:
    (phone,) = await subscribe_on_whatsapp(redis, [("NE", "bm")])
    await approved(app, tokens)
    await whatsapp_worker.run_jobs()
    (sent,) = fake.creates
    assert sent.form["To"] == phone and "ContentSid" not in sent.form
    assert sent.form["Body"] == TEXTS["bm"].replace("ɲɛ", "nyè")  # SMS: GSM-7 spelling


async def test_within_the_window_a_free_form_message_goes(
        app: Any, whatsapp_worker: Harness, fake: FakeTwilio, tokens: dict[str, str],  # noqa: F811
        redis: Redis) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as web:
        gateway = Gateway(web)
        for typed in ("ALERTES", "1", "2"):  # subscribes from WhatsApp, just now
            await gateway.text(typed, phone="whatsapp:+22376000901")
    await approved(app, tokens)
    await whatsapp_worker.run_jobs()
    (sent,) = fake.creates
    assert sent.form["To"] == "whatsapp:+22376000901"
    assert sent.form["Body"] == TEXTS["fr"] and "ContentSid" not in sent.form


async def test_refused_at_once_with_63016_it_goes_by_sms(
        app: Any, whatsapp_worker: Harness, fake: FakeTwilio, tokens: dict[str, str],  # noqa: F811
        redis: Redis) -> None:
    (phone,) = await subscribe_on_whatsapp(redis, [("NE", "en")])
    fake.plan(Fail(status=400, code=63016))
    broadcast = await approved(app, tokens)
    await whatsapp_worker.run_jobs()
    refused, instead = fake.creates
    assert refused.form["To"] == f"whatsapp:{phone}" and refused.form["ContentSid"]
    assert instead.form["To"] == phone and instead.form["Body"] == TEXTS["en"]
    counts = (await read(app, tokens, broadcast["id"]))["counts"]
    assert counts["sent"] == 1 and counts["failed"] == 0


async def test_refused_later_in_a_status_report_it_goes_by_sms_once(
        app: Any, whatsapp_worker: Harness, fake: FakeTwilio, tokens: dict[str, str],  # noqa: F811
        redis: Redis) -> None:
    (phone,) = await subscribe_on_whatsapp(redis, [("NE", "fr")])
    broadcast = await approved(app, tokens)
    await whatsapp_worker.run_jobs()
    (template,) = fake.messages
    assert template["body"] == TEMPLATE_TEXT.format(TEXTS["fr"])
    for _ in range(2):  # Twilio reports it twice: one SMS all the same
        assert await post_status(app, template["status_callback"], "undelivered",
                                 template["sid"], "63016") == 204
    await whatsapp_worker.run_jobs()
    sms = [m for m in fake.messages if m["to"] == phone]
    assert len(sms) == 1 and sms[0]["body"] == TEXTS["fr"]
    assert await post_status(app, sms[0]["status_callback"], "delivered", sms[0]["sid"]) == 204
    counts = (await read(app, tokens, broadcast["id"]))["counts"]
    assert counts == {"queued": 0, "sent": 0, "delivered": 1, "failed": 0, "skipped": 0}
