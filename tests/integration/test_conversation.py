"""The conversation loop against a real Redis server: cases, drafts, refusals, races."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from redis.asyncio import Redis, RedisCluster

from bot.cases.references import is_valid
from bot.conversation import Conversation, InboundMessage
from bot.engine.session import Session
from bot.settings import Settings
from bot.store import phone_state
from bot.store.cases import read_case
from bot.types import Channel
from tests.factories import default_flow
from tests.redis_server import snapshot

pytestmark = pytest.mark.deployments

PHONE = "+22376000001"
REFERENCE = re.compile(r"(\d{4})-(\d{4})")
# main → 2 return request → 1 consent, then the answers, then 1 confirm.
NAME, NATIONALITY, COUNTRY, CITY = "Awa Diarra", "Mali", "Niger", "Agadez"
ANSWERS = [NAME, NATIONALITY, COUNTRY, CITY, "2", "2", "2", "1", "2", "1", "1", "1"]
RETURN_REQUEST = ["2", "1", *ANSWERS, "1"]


@pytest.fixture
def conversation(redis: Redis, settings: Settings) -> Conversation:
    return Conversation(redis=redis, compiled=default_flow(), settings=settings)


async def dial(conversation: Conversation, phone: str = PHONE) -> str:
    reply = await conversation.handle(InboundMessage(Channel.USSD, phone, "", restart=True))
    return reply.text


async def send(conversation: Conversation, texts: list[str], phone: str = PHONE,
               channel: Channel = Channel.USSD) -> str:
    text = ""
    for typed in texts:
        text = (await conversation.handle(InboundMessage(channel, phone, typed))).text
    return text


@pytest.mark.parametrize("language", ["fr", "en", "bm"])
async def test_a_return_request_creates_a_case_with_what_was_typed(
        conversation: Conversation, redis: Redis, language: str) -> None:
    await conversation.set_language(PHONE, language)
    await dial(conversation)
    done = await send(conversation, RETURN_REQUEST)
    found = REFERENCE.search(done)
    assert found, done
    reference = found.group(1) + found.group(2)
    assert is_valid(reference)
    case = await read_case(redis, reference)
    assert case.kind == "return_request" and case.language == language
    assert case.phone == PHONE and case.channel == "ussd"
    assert case.priority == "urgent"  # victim of trafficking or violence
    assert case.answers == {
        "name": NAME, "nationality": NATIONALITY, "country": COUNTRY, "city": CITY,
        "under_18": "no", "medical": "no", "pregnant": "no",
        "trafficking_or_violence": "yes", "disability": "no",
        "travel_document": "yes", "sms_safe": "yes", "followup_consent": "yes",
    }
    assert case.consent is not None and case.consent.text_version == "2026-12-07"


async def test_follow_my_request_tells_the_status_and_catches_typos(
        conversation: Conversation) -> None:
    await conversation.set_language(PHONE, "en")
    await dial(conversation)
    found = REFERENCE.search(await send(conversation, RETURN_REQUEST))
    assert found
    reference = found.group(0)
    await dial(conversation)
    status = await send(conversation, ["3", reference])
    assert "received" in status and "1 " in status  # own request: may withdraw
    digits = reference.replace("-", "")
    swapped = next(digits[:i] + digits[i + 1] + digits[i] + digits[i + 2:]
                   for i in range(7) if digits[i] != digits[i + 1])
    typo = str((int(digits[0]) + 1) % 10) + digits[1:]
    for wrong in (swapped, typo):
        await dial(conversation)
        assert (await send(conversation, ["3", wrong])).startswith("This number is not right")


async def test_a_valid_reference_of_no_case_is_looked_up_once_and_said_unknown(
        conversation: Conversation, redis: Redis) -> None:
    await conversation.set_language(PHONE, "en")
    await dial(conversation)
    await send(conversation, ["3", "1000-0004", "0", "3"])  # the scripts loaded once
    if isinstance(redis, RedisCluster):  # no MONITOR on a Cluster client: the answer alone
        assert (await send(conversation, ["1000-0004"])).startswith("No request has this")
        return
    async with redis.monitor() as monitor:  # no look-up loop: one read, one write
        reply = await send(conversation, ["1000-0004"])
        commands = []
        while True:
            try:
                command = await asyncio.wait_for(monitor.next_command(), 0.2)
            except TimeoutError:
                break
            name = command["command"].split()[0].upper()
            # INFO: the replica count's refresh; HELLO: a pool connection's handshake (the
            # monitor took the open one), neither the hop's own.
            if command.get("client_type") != "lua" and name not in ("INFO", "HELLO"):
                commands.append(name)
    assert reply.startswith("No request has this number")
    assert commands == ["EVALSHA", "EVALSHA"]


async def test_refusing_consent_leaves_no_answer_and_no_draft(
        conversation: Conversation, redis: Redis) -> None:
    await conversation.set_language(PHONE, "fr")
    await dial(conversation)
    # Give consent, type a name, then go back and refuse: the name must vanish.
    await send(conversation, ["2", "1", NAME, NATIONALITY])
    assert any(NAME in value for value in (await snapshot(redis)).values())
    await send(conversation, ["0", "0", "0", "2"])
    dump = await snapshot(redis)
    assert not [key for key in dump if ":case" in key or "{cases}" in key]
    assert "d" not in await phone_state.read_parts(redis, conversation.pseudonym(PHONE))
    for key, value in dump.items():
        assert NAME not in value, (key, value)
        assert f'"{NATIONALITY}"' not in value, (key, value)


async def test_a_dropped_ussd_request_is_offered_again_and_keeps_its_answers(
        conversation: Conversation, redis: Redis) -> None:
    await conversation.set_language(PHONE, "en")
    await dial(conversation)
    await send(conversation, ["2", "1", NAME, NATIONALITY])
    # The USSD session drops; the next dial offers to continue.
    offer = await dial(conversation)
    assert offer.startswith("You have an unfinished return request")
    assert (await send(conversation, ["1"])).startswith("Which country")
    done = await send(conversation, [*ANSWERS[2:], "1"])
    found = REFERENCE.search(done)
    assert found
    case = await read_case(redis, found.group(1) + found.group(2))
    assert case.answers["name"] == NAME and case.answers["nationality"] == NATIONALITY
    assert "d" not in await phone_state.read_parts(redis, conversation.pseudonym(PHONE))


async def test_a_draft_started_on_ussd_is_offered_on_sms(conversation: Conversation) -> None:
    await conversation.set_language(PHONE, "fr")
    await dial(conversation)
    await send(conversation, ["2", "1", NAME])
    offer = await send(conversation, ["Bonjour"], channel=Channel.SMS)
    assert offer.startswith("Vous avez une demande de retour non finie")
    assert (await send(conversation, ["1"], channel=Channel.SMS)).startswith("Votre nationalit")


async def test_200_concurrent_steps_for_one_phone_lose_nothing(
        redis: Redis, settings: Settings) -> None:
    # Two Conversation objects stand for two web processes sharing one Redis.
    processes = [Conversation(redis=redis, compiled=default_flow(), settings=settings)
                 for _ in range(2)]
    await processes[0].handle(InboundMessage(Channel.SMS, PHONE, "Bonjour"))
    # Inputs that never end the conversation, so its step counter runs on.
    inputs = ["9", "00", "98", "7", "x"]
    messages = [processes[i % 2].handle(InboundMessage(Channel.SMS, PHONE, inputs[i % 5]))
                for i in range(200)]
    replies = await asyncio.gather(*messages)
    assert len(replies) == 200 and all(reply.text for reply in replies)
    parts = await phone_state.read_parts(redis, processes[0].pseudonym(PHONE))
    assert Session.from_json(parts[phone_state.session_part(Channel.SMS)]).steps == 200


async def test_the_embedded_default_is_a_real_redis_with_append_only_file(
        tmp_path: Path) -> None:
    from bot.store.connection import open_store

    store = open_store(Settings(data_dir=tmp_path / "var"))
    try:
        assert await store.redis.ping()
        assert (await store.redis.config_get("appendonly"))["appendonly"] == "yes"
        assert (await store.redis.config_get("appendfsync"))["appendfsync"] == "always"
        await store.redis.set("probe", "1")
    finally:
        await store.close()
    assert any((tmp_path / "var").rglob("*.aof*")) or any((tmp_path / "var").rglob("*appendonly*"))


async def test_a_step_after_the_server_lost_its_scripts_sends_the_body(
        conversation: Conversation, redis: Redis) -> None:
    await dial(conversation)
    before = await send(conversation, ["1", "2"])
    await redis.script_flush()  # as after a restart: STEP's EVALSHA is answered NOSCRIPT
    after = await send(conversation, ["0"])  # back: one STEP, sent again as EVAL
    assert after != before and "1" in after  # NoScriptError would have failed the hop
