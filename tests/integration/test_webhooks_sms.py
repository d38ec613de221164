"""The Twilio SMS and status webhooks, through the real app and a real Redis server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from twilio.request_validator import RequestValidator

import bot.engine.plan
from bot import privacy
from bot.conversation import Conversation, InboundMessage
from bot.engine.turns import Inbound
from bot.settings import Settings
from bot.store import keys
from bot.store.cases import read_case
from bot.store.deliveries import mark_opted_out
from bot.types import Channel
from tests import phone_state_support as stored
from tests.factories import default_flow
from tests.integration.webhooks_support import (
    AUTH_TOKEN,
    EXPECTED_ANSWERS,
    PII_KEY,
    PUBLIC_URL,
    RETURN_REQUEST,
    Gateway,
    gateway_settings,
    new_sid,
    reference_in,
    running_app,
    said,
)
from tests.redis_server import RedisServer, snapshot

pytestmark = pytest.mark.deployments

FLOW = default_flow().flow


def text(name: str, language: str = "fr") -> str:
    return FLOW.text(name, language)


def pseudonym(phone: str) -> str:
    return privacy.pseudonym(phone, PII_KEY.encode())


@pytest.fixture
async def gateway(redis: Redis, redis_server: RedisServer,
                  tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_app(gateway_settings(redis_server.url, tmp_path)) as gateway:
        yield gateway


async def start_in_french(gateway: Gateway, phone: str | None = None) -> None:
    welcome = await gateway.text("Bonjour", phone=phone)
    assert "Francais" in welcome
    assert "Infos protection" in await gateway.text("1", phone=phone)


async def test_a_return_request_over_sms_creates_a_case_with_what_was_typed(
        gateway: Gateway, redis: Redis) -> None:
    await start_in_french(gateway)
    for typed in RETURN_REQUEST[:-1]:
        assert await gateway.text(typed)
    done = await gateway.text(RETURN_REQUEST[-1])
    case = await read_case(redis, reference_in(done))
    assert case.kind == "return_request" and case.channel == "sms"
    assert case.phone == gateway.phone and case.answers == EXPECTED_ANSWERS


async def test_whatsapp_senders_are_answered_as_their_phone(gateway: Gateway) -> None:
    assert "Francais" in await gateway.text("hello", phone="whatsapp:+22376000002")
    assert "Infos protection" in await gateway.text("1", phone="+22376000002")


@pytest.mark.parametrize("signature", ["missing", "wrong", "other-url", "other-body"])
async def test_an_unsigned_or_badly_signed_request_is_refused_with_no_change(
        gateway: Gateway, redis: Redis, signature: str) -> None:
    await start_in_french(gateway)
    before = await snapshot(redis)
    params = {"MessageSid": new_sid(), "From": gateway.phone, "To": "+22320000000", "Body": "5"}
    headers: dict[str, str] = {}
    if signature == "wrong":
        headers["X-Twilio-Signature"] = "bm90IGEgc2lnbmF0dXJl"
    elif signature == "other-url":
        response = await gateway.sms("5", signed_url="https://elsewhere.example/webhooks/twilio/sms")
        assert response.status_code == 403
        assert await snapshot(redis) == before
        return
    elif signature == "other-body":
        from tests.integration.webhooks_support import sign

        headers["X-Twilio-Signature"] = sign(PUBLIC_URL + "/webhooks/twilio/sms",
                                             {**params, "Body": "4"})
    response = await gateway.client.post("/webhooks/twilio/sms", data=params, headers=headers)
    assert response.status_code == 403
    assert await snapshot(redis) == before


async def test_a_signature_for_the_public_url_is_accepted_behind_a_proxy(gateway: Gateway) -> None:
    # The app is reached over plain http on 127.0.0.1; Twilio signed the https public URL.
    assert str(gateway.client.base_url).startswith("http://127.0.0.1")
    response = await gateway.sms("hello", signed_url=PUBLIC_URL + "/webhooks/twilio/sms")
    assert response.status_code == 200 and "Francais" in said(response)
    seen = await gateway.sms("hello", signed_url="http://127.0.0.1:8000/webhooks/twilio/sms")
    assert seen.status_code == 403


async def test_a_signature_settings_header_naming_sha1_or_sha256_is_checked_as_before(
        gateway: Gateway) -> None:
    """The two algorithms Twilio signs with still pass the header to the SDK (an unknown
    one is a 403 before it: tests/integration/test_gateway_lane.py)."""
    for algorithm in ("HMAC_SHA256", "hmac_sha256", "HMAC_SHA1"):
        params = {"MessageSid": new_sid(), "From": gateway.phone, "To": "+22320000000",
                  "Body": "hello"}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(
            PUBLIC_URL + "/webhooks/twilio/sms", params, algorithm.upper())
        response = await gateway.client.post("/webhooks/twilio/sms", data=params, headers={
            "X-Twilio-Signature": signature,
            "X-Twilio-Webhooks-Signature-Settings": f"key=k1,algorithm={algorithm}"})
        assert response.status_code == 200, algorithm
        said(response)
        wrong = await gateway.client.post("/webhooks/twilio/sms", data=params, headers={
            "X-Twilio-Signature": signature,
            "X-Twilio-Webhooks-Signature-Settings": "algorithm=HMAC_SHA1"
            if algorithm.upper() == "HMAC_SHA256" else "algorithm=HMAC_SHA256"})
        assert wrong.status_code == 403, algorithm


async def test_a_retried_message_sid_is_applied_once_and_answered_the_same(
        gateway: Gateway, redis: Redis) -> None:
    await start_in_french(gateway)
    sid = new_sid()
    first = await gateway.sms("2", sid=sid)
    again = await gateway.sms("2", sid=sid)
    assert first.text == again.text and "J'accepte" in said(first)
    session = await stored.session(redis, pseudonym(gateway.phone), Channel.SMS)
    assert session is not None and session.steps == 2  # "1" then "2": one step each
    assert "nom" in (await gateway.text("1")).lower()


async def test_fifty_concurrent_sms_from_one_phone_apply_all_in_arrival_order(
        redis: Redis, redis_server: RedisServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = gateway_settings(redis_server.url, tmp_path, rate_limit=100)
    arrived: list[str] = []
    applied: list[str] = []
    real_turn = bot.engine.plan.turn

    def recording_turn(compiled: Any, inbound: Inbound, *args: Any) -> Any:
        if not applied or applied[-1] != inbound.text:  # planned again on a fresher state
            applied.append(inbound.text)
        return real_turn(compiled, inbound, *args)

    monkeypatch.setattr(bot.engine.plan, "turn", recording_turn)
    async with running_app(settings) as gateway:
        await start_in_french(gateway)
        conversation = gateway.client._transport.app.state.webhooks.conversation  # type: ignore[attr-defined]
        real_process = conversation.process

        async def recording_process(message: Any) -> Any:
            arrived.append(message.text)
            return await real_process(message)

        conversation.process = recording_process
        bodies = [f"message {number}" for number in range(50)]
        responses = await asyncio.gather(*(gateway.sms(body) for body in bodies))
    assert all(response.status_code == 200 and said(response) for response in responses)
    assert sorted(applied[2:]) == sorted(bodies)  # none lost
    assert applied[2:] == arrived  # one at a time, in arrival order
    session = await stored.session(redis, pseudonym(gateway.phone), Channel.SMS)
    assert session is not None and session.steps == 51


async def test_stop_confirms_once_then_silence_until_start(gateway: Gateway, redis: Redis) -> None:
    await start_in_french(gateway)
    assert await gateway.text("Arrêt") == text("opted_out")
    for anything in ["1", "MENU", "STOP", "bonjour", "SUIVI 1234-5678"]:
        assert await gateway.text(anything) == ""
    profile = await stored.profile(redis, pseudonym(gateway.phone))
    assert profile is not None and profile.opted_out
    assert await stored.seconds_left(redis, pseudonym(gateway.phone), "p") is None  # until START
    assert await gateway.text("debut") == text("opted_in")
    assert "Infos protection" in await gateway.text("menu")


async def test_a_loop_gets_one_notice_then_silence_but_for_emergencies(
        redis: Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    settings = gateway_settings(redis_server.url, tmp_path, rate_limit=5)
    async with running_app(settings) as gateway:
        limited_before = counted((await gateway.client.get("/metrics")).text,
                                 "helpline_rate_limited_phones_total")
        replies = [await gateway.text("Je suis absent, je vous rappelle.") for _ in range(8)]
        assert all(replies[:5])
        assert replies[5] == text("rate_limited") and "10 minutes" in replies[5]
        assert replies[6:] == ["", ""]
        # Over the limit, an emergency word is still answered, every time.
        for word in ["SOS", "urgence", "Au secours", "EMERGENCY"]:
            answer = await gateway.text(word)
            assert "Police 17" in answer and "Pompiers 18" in answer, answer
            assert answer.startswith("URGENCE au Mali"), answer
        assert await gateway.text("1") == ""
        # The window passes: its counter expires (here, at once).
        left = await stored.seconds_left(redis, pseudonym(gateway.phone), "n")
        assert left is not None and 0 < left <= 600
        await stored.drop(redis, pseudonym(gateway.phone), "n")
        assert await gateway.text("loop again")
        metrics = (await gateway.client.get("/metrics")).text
    # The counter is the process's (a test run on two deployments counts twice).
    assert counted(metrics, "helpline_rate_limited_phones_total") == limited_before + 1
    assert 'helpline_messages_total{channel="sms",outcome="rate_limited"}' in metrics


def counted(metrics: str, name: str) -> float:
    """A counter's value in a Prometheus text exposition (0 when absent)."""
    for line in metrics.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return 0.0


async def test_a_person_reading_topic_after_topic_is_not_cut_off_by_the_loop_limit(
        redis: Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    settings = gateway_settings(redis_server.url, tmp_path, rate_limit=5)
    reading = ["Bonjour", "1", "1", "1", "1", "1", "1", "1", "1", "0", "1", "2", "1", "1", "1",
               "2", "1", "3", "1", "1"]  # 20 = the ceiling (4 × 5), 14 of them "1"
    async with running_app(settings) as gateway:
        replies = [await gateway.text(typed) for typed in reading]
        assert all(replies), replies
        assert any("Vos droits" in r for r in replies) and any("Traite" in r for r in replies)
        assert await gateway.text("1") == text("rate_limited")  # the ceiling still holds
        assert await gateway.text("1") == ""


async def test_suivi_answers_the_status_of_a_request(gateway: Gateway) -> None:
    await start_in_french(gateway)
    done = ""
    for typed in RETURN_REQUEST:
        done = await gateway.text(typed)
    reference = reference_in(done)
    status = await gateway.text(f"Suivi {reference[:4]}-{reference[4:]}")
    assert text("status_new") in status
    typo = reference[:-1] + str((int(reference[-1]) + 1) % 10)
    assert text("check_number") in await gateway.text(f"SUIVI {typo}")


async def test_effacer_confirmed_erases_the_phones_data_and_cases(
        gateway: Gateway, redis: Redis) -> None:
    await start_in_french(gateway)
    done = ""
    for typed in RETURN_REQUEST:
        done = await gateway.text(typed)
    reference = reference_in(done)
    assert await gateway.text("effacer") == text("erase_confirm")
    assert await gateway.text("1") == text("erased")
    case = await read_case(redis, reference)
    assert case.phone is None and case.answers == {} and case.kind == "return_request"
    tag = pseudonym(gateway.phone)
    assert [key async for key in redis.scan_iter(f"{keys.phone_state(tag)}:*")] == []
    assert sorted(await stored.parts(redis, tag)) == ["n", "rm"]
    assert "Francais" in await gateway.text("bonjour")  # a first contact again


async def test_effacer_then_anything_else_erases_nothing(gateway: Gateway, redis: Redis) -> None:
    await start_in_french(gateway)
    await gateway.text("DELETE")
    assert "URGENCE au Mali" in await gateway.text("5")
    assert await stored.profile(redis, pseudonym(gateway.phone)) is not None


async def test_status_callbacks_are_accepted_signed_and_refused_unsigned(gateway: Gateway) -> None:
    assert (await gateway.status("delivered")).status_code == 204
    assert (await gateway.status("delivered", signed=False)).status_code == 403


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"Body=hello", "application/x-www-form-urlencoded"),
        (b"MessageSid=SM1&Body=hello", "application/x-www-form-urlencoded"),
        (b"MessageSid=SM1&From=%2B22376000001&Body=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"MessageSid=SM1&From=%2B22376000001&Body=%C3%28", "application/x-www-form-urlencoded"),
        (b"<xml/>", "text/xml"),
        (b"MessageSid=SM1&From=%2B22376000001&Body=" + b"a" * 100_000,
         "application/x-www-form-urlencoded"),
    ],
)
async def test_malformed_twilio_requests_get_a_4xx_and_no_traceback(
        body: bytes, content_type: str, redis: Redis, redis_server: RedisServer,
        tmp_path: Path) -> None:
    unsigned = gateway_settings(redis_server.url, tmp_path, twilio_auth_token=None)
    async with running_app(unsigned) as gateway:
        response = await gateway.client.post("/webhooks/twilio/sms", content=body,
                                              headers={"content-type": content_type})
    assert 400 <= response.status_code < 500
    assert "Traceback" not in response.text and "File " not in response.text


async def test_two_processes_taking_turns_on_one_phone_see_each_others_steps(
        redis: Redis, settings: Settings) -> None:
    compiled = default_flow()
    first = Conversation(redis=redis, compiled=compiled, settings=settings)
    second = Conversation(redis=redis, compiled=compiled, settings=settings)
    phone = "+22376000003"
    screens = []
    for number, typed in enumerate(["bonjour", "1", "2", "1", "Awa Diarra", "Mali"]):
        process = first if number % 2 == 0 else second
        screens.append((await process.handle(InboundMessage(Channel.SMS, phone, typed))).text)
    assert "Francais" in screens[0] and "Infos protection" in screens[1]
    assert "J'accepte" in screens[2] and "nom" in screens[3].lower()
    assert "nationalit" in screens[4].lower() and "pays" in screens[5].lower()


async def test_an_opt_out_written_by_another_process_is_honoured_at_once(
        redis: Redis, settings: Settings) -> None:
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    phone = "+22376000004"
    await conversation.handle(InboundMessage(Channel.SMS, phone, "bonjour"))
    await conversation.handle(InboundMessage(Channel.SMS, phone, "1"))
    # The worker marks the phone opted out (Twilio said 21610) behind this process's back.
    await mark_opted_out(redis, conversation.pseudonym(phone))
    assert (await conversation.handle(InboundMessage(Channel.SMS, phone, "5"))).text == ""
