"""The Africa's Talking USSD webhook, through the real app and a real Redis server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.store.cases import read_case
from tests.integration.webhooks_support import (
    EXPECTED_ANSWERS,
    RETURN_REQUEST,
    Gateway,
    gateway_settings,
    reference_in,
    running_app,
    screen,
)
from tests.redis_server import RedisServer, snapshot

pytestmark = pytest.mark.deployments


@pytest.fixture
async def gateway(redis: Redis, redis_server: RedisServer,
                  tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_app(gateway_settings(redis_server.url, tmp_path)) as gateway:
        yield gateway


async def test_a_return_request_over_ussd_creates_a_case_with_what_was_typed(
        gateway: Gateway, redis: Redis) -> None:
    first = await gateway.dial("ATUid_1")
    assert first.startswith("CON ") and "Francais" in first
    await gateway.press("ATUid_1", "1")  # French
    for typed in RETURN_REQUEST[:-1]:
        assert (await gateway.press("ATUid_1", typed)).startswith("CON ")
    done = await gateway.press("ATUid_1", RETURN_REQUEST[-1])
    assert done.startswith("END ")
    case = await read_case(redis, reference_in(done))
    assert case.kind == "return_request" and case.channel == "ussd"
    assert case.phone == gateway.phone and case.language == "fr"
    assert case.answers == EXPECTED_ANSWERS


async def test_every_screen_fits_the_ussd_limit(gateway: Gateway) -> None:
    screens = [await gateway.dial("ATUid_2")]
    for typed in ["1", "1", "1", "98", "98", "0", "00", "5"]:
        screens.append(await gateway.press("ATUid_2", typed))
    assert all(len(shown) <= 182 for shown in screens), [len(s) for s in screens]


async def test_a_repeated_hop_gets_the_same_screen_without_advancing(gateway: Gateway) -> None:
    await gateway.dial("ATUid_3")
    await gateway.press("ATUid_3", "1")
    consent = await gateway.press("ATUid_3", "2")
    again = screen(await gateway.hop("ATUid_3", "1*2"))
    assert again == consent
    # Advanced once: "1" now accepts the consent and asks the name.
    name_question = await gateway.press("ATUid_3", "1")
    assert "nom" in name_question.lower()
    # An older hop replayed gets its own screen again, and still does not advance.
    assert screen(await gateway.hop("ATUid_3", "1*2")) == consent
    assert "nationalit" in (await gateway.press("ATUid_3", "Awa Diarra")).lower()


async def test_a_direct_dial_with_inputs_does_not_derail_the_session(gateway: Gateway) -> None:
    first = screen(await gateway.hop("ATUid_4", "2"))  # *384*55*2#
    assert "Francais" in first
    main = screen(await gateway.hop("ATUid_4", "2*1"))
    assert "1 Infos protection" in main


async def test_a_new_gateway_session_starts_from_the_top(gateway: Gateway) -> None:
    await gateway.dial("ATUid_5")
    await gateway.press("ATUid_5", "1")
    await gateway.press("ATUid_5", "1")
    fresh = await gateway.dial("ATUid_6")
    assert "1 Infos protection" in fresh  # the language is remembered: main menu


@pytest.mark.parametrize("key", [None, "", "wrong-secret", "USSD-SECRET-FOR-TESTS"])
async def test_a_wrong_or_missing_key_is_refused_with_no_change(
        gateway: Gateway, redis: Redis, key: str | None) -> None:
    await gateway.dial("ATUid_7")
    before = await snapshot(redis)
    response = await gateway.hop("ATUid_7", "1", key=key)
    assert response.status_code == 403
    assert await snapshot(redis) == before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"serviceCode=*384%2A55%23&text=", "application/x-www-form-urlencoded"),
        (b"sessionId=ATUid_8&text=1", "application/x-www-form-urlencoded"),
        (b"sessionId=ATUid_8&phoneNumber=not-a-phone&text=", "application/x-www-form-urlencoded"),
        (b"sessionId=ATUid_8&phoneNumber=%2B22376000001&text=%FF%FE",
         "application/x-www-form-urlencoded"),
        (b"sessionId=ATUid_8&phoneNumber=%2B22376000001&text=\xff\xfe",
         "application/x-www-form-urlencoded"),
        (b'{"sessionId": "ATUid_8"}', "application/json"),
        (b"sessionId=ATUid_8&phoneNumber=%2B22376000001&text=" + b"1" * 100_000,
         "application/x-www-form-urlencoded"),
    ],
)
async def test_malformed_requests_get_a_4xx_and_no_traceback(
        gateway: Gateway, body: bytes, content_type: str) -> None:
    response = await gateway.client.post(
        "/webhooks/ussd/africastalking", params={"key": "ussd-secret-for-tests"},
        content=body, headers={"content-type": content_type},
    )
    assert 400 <= response.status_code < 500
    assert "Traceback" not in response.text and "File " not in response.text


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("&".join(f"f{n}=1" for n in range(70)), "more than 64 form fields"),
        ("sessionId=" + "A" * 15_000 + "&phoneNumber=%2B22376000001",
         "sessionId is too long (over 128 characters)"),
        ("phoneNumber=%2B22376000001", "sessionId and phoneNumber are required"),
        ("sessionId=ATUid_10&phoneNumber=", "sessionId and phoneNumber are required"),
        ("sessionId=ATUid_10&phoneNumber=%2B22376000001&text=" + "1" * 4001,
         "text is too long"),
        ("sessionId=ATUid_10&phoneNumber=%2B22376000001&text=%FF", "the form is not "
         "URL-encoded UTF-8"),
    ],
)
async def test_a_refused_hop_is_told_what_is_wrong(gateway: Gateway, body: str,
                                                   said: str) -> None:
    response = await gateway.client.post(
        "/webhooks/ussd/africastalking", params={"key": "ussd-secret-for-tests"},
        content=body.encode(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert (response.status_code, response.text) == (400, said)


@pytest.mark.parametrize("text", ["*" * 500, "1" + "*" * 500, "*#*#" * 100, "😀" * 50])
async def test_strange_histories_never_give_a_5xx(gateway: Gateway, text: str) -> None:
    await gateway.dial("ATUid_9")
    response = await gateway.hop("ATUid_9", text)
    assert response.status_code < 500
    if response.status_code == 200:
        assert response.text.startswith(("CON ", "END "))
