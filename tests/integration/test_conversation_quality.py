"""What a migrant on a basic phone runs into (issue 8), through the real webhooks and Redis.

Each test walks the gateways as a phone would, in fr/en/bm, over USSD and SMS.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.admin import operators
from bot.admin.operators import Role
from bot.engine import sms
from bot.flows.model import NAV_MORE, StateKind
from bot.store.cases import read_case
from tests.factories import default_flow
from tests.integration.webhooks_support import (
    ANSWERS,
    Gateway,
    gateway_settings,
    reference_in,
    running_app,
)
from tests.redis_server import RedisServer

FLOW = default_flow().flow
API = "/admin/api/v1"
LANGUAGE_KEYS = {"fr": "1", "en": "2", "bm": "3"}
WRONG_KEY = "7"
_sessions = itertools.count(1)
_phones = itertools.count(1)


def new_phone() -> str:
    return f"+2237610{next(_phones):04d}"


def new_session() -> str:
    return f"ATUid_q{next(_sessions)}"


@pytest.fixture
async def gateway(redis: Redis, redis_server: RedisServer,
                  tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_app(gateway_settings(redis_server.url, tmp_path)) as gateway:
        yield gateway


def topic_paths() -> dict[str, list[str]]:
    """Every information screen (menus under `info`), with the keys that reach it from main."""
    start = next(o for o in FLOW.states["main"].options if o.to == "info")
    paths = {"info": [start.key]}
    queue = deque(["info"])
    while queue:
        name = queue.popleft()
        for option in FLOW.states[name].options:
            target = FLOW.states[option.to]
            if (option.to in paths or target.kind is not StateKind.MENU
                    or option.to.startswith("callback")):
                continue
            paths[option.to] = [*paths[name], option.key]
            queue.append(option.to)
    return paths


def option_lines(state: str, shown: str) -> list[str]:
    """The option lines of `state` that `shown` lacks."""
    lines = shown[len("CON "):].split("\n")
    return [o.key for o in FLOW.states[state].options
            if not any(line.startswith(f"{o.key} ") for line in lines)]


async def ussd_in(gateway: Gateway, language: str, phone: str) -> str:
    session = new_session()
    first = await gateway.dial(session, phone=phone)
    if "Bienvenue" in first:
        await gateway.press(session, LANGUAGE_KEYS[language], phone=phone)
    return session


async def wrong_key_keeps_choices_in_reach(gateway: Gateway, session: str, phone: str,
                                           state: str) -> None:
    """A wrong key, then at most one 98, shows every choice; 98 is never a strike."""
    shown = await gateway.press(session, WRONG_KEY, phone=phone)
    assert shown.startswith("CON "), shown
    if option_lines(state, shown):
        shown = await gateway.press(session, NAV_MORE, phone=phone)
    assert not option_lines(state, shown), (state, shown)
    # Paging was not a wrong answer: the first option still works (no 3-strike reset).
    first = FLOW.states[state].options[0]
    after = await gateway.press(session, first.key, phone=phone)
    assert after.startswith(("CON ", "END ")) and "Aide aux migrants" not in after[:40]


@pytest.mark.parametrize("language", ["fr", "en", "bm"])
async def test_a_wrong_key_never_hides_the_choices_of_consent_or_any_topic(
        gateway: Gateway, language: str) -> None:
    screens = {"avr_consent": ["2"], "callback_consent": ["4"], **topic_paths()}
    assert {"rights_1", "traffic_1", "routes_3", "help_3", "gbv_3", "climate_2"} <= set(screens)
    for state, keys in screens.items():
        phone = new_phone()  # a fresh phone each time: no draft offered to resume
        session = await ussd_in(gateway, language, phone)
        for key in keys:
            await gateway.press(session, key, phone=phone)
        await wrong_key_keeps_choices_in_reach(gateway, session, phone, state)


async def test_three_wrong_references_go_home_without_the_reference_hint(
        gateway: Gateway) -> None:
    phone = new_phone()
    session = await ussd_in(gateway, "en", phone)
    await gateway.press(session, "3", phone=phone)
    hinted = await gateway.press(session, "1234", phone=phone)
    assert FLOW.text("check_number", "en") in hinted
    await gateway.press(session, "12", phone=phone)
    home = await gateway.press(session, "x", phone=phone)
    assert "Help for migrants" in home and FLOW.text("check_number", "en") not in home
    assert FLOW.text("too_many_tries", "en") in home


async def test_hints_say_what_is_expected(gateway: Gateway) -> None:
    phone = new_phone()
    session = await ussd_in(gateway, "fr", phone)
    await gateway.press(session, "2", phone=phone)
    await gateway.press(session, "1", phone=phone)
    assert "en lettres" in await gateway.press(session, "12345", phone=phone)


async def test_0_from_a_topic_list_goes_to_its_parent_not_into_the_pages_read(
        gateway: Gateway) -> None:
    phone = new_phone()
    session = await ussd_in(gateway, "fr", phone)
    for key in ["1", "1", "1", "1"]:  # info, rights 1-3
        await gateway.press(session, key, phone=phone)
    topics = await gateway.press(session, "1", phone=phone)  # "Sujets": back to the list
    assert "Infos protection" in topics
    assert "Aide aux migrants" in await gateway.press(session, "0", phone=phone)


async def return_request_by_sms(gateway: Gateway, phone: str, *, language_key: str = "1") -> str:
    """A whole return request by SMS from a new phone (1 French, 2 English); its reference."""
    await gateway.text("Bonjour", phone=phone)
    await gateway.text(language_key, phone=phone)
    done = ""
    for typed in ["2", "1", *ANSWERS, "1"]:
        done = await gateway.text(typed, phone=phone)
    return reference_in(done)


async def test_sms_track_and_status_answer_like_suivi(gateway: Gateway) -> None:
    phone = new_phone()
    reference = await return_request_by_sms(gateway, phone, language_key="2")
    for keyword in ["TRACK", "status", "Suivi"]:
        answer = await gateway.text(f"{keyword} {reference[:4]}-{reference[4:]}", phone=phone)
        assert FLOW.text("status_new", "en") in answer, answer


async def test_effacer_offers_a_way_to_cancel(gateway: Gateway, redis: Redis) -> None:
    phone = new_phone()
    await gateway.text("Bonjour", phone=phone)
    await gateway.text("1", phone=phone)
    asked = await gateway.text("EFFACER", phone=phone)
    assert "2 pour annuler" in asked
    assert await gateway.text("2", phone=phone) == FLOW.text("erase_cancelled", "fr")
    assert "Infos protection" in await gateway.text("MENU", phone=phone)  # nothing erased


async def walk_sms(gateway: Gateway, phone: str, inputs: list[str]) -> list[str]:
    return [await gateway.text(typed, phone=phone) for typed in inputs]


async def test_a_bambara_return_request_is_gsm7_and_costs_no_more_than_french(
        gateway: Gateway) -> None:
    request = ["2", "1", *ANSWERS, "1"]
    costs = {}
    for language in ("fr", "bm"):
        phone = new_phone()
        replies = await walk_sms(gateway, phone, ["Bonjour", LANGUAGE_KEYS[language], *request])
        assert reference_in(replies[-1])
        costs[language] = sum(sms.segments(reply) for reply in replies[1:])
        if language == "bm":
            assert all(sms.encoding(reply) is sms.Encoding.GSM7 for reply in replies), replies
            assert "ɛ" not in "".join(replies) and "è" in "".join(replies)
    assert costs["bm"] <= 1.25 * costs["fr"], costs


async def test_a_bambara_ussd_return_request_fits_each_screen_in_its_encoding(
        gateway: Gateway) -> None:
    phone = new_phone()
    session = new_session()
    screens = [await gateway.dial(session, phone=phone)]
    for typed in ["3", "2", "1", *ANSWERS, "1"]:
        screens.append(await gateway.press(session, typed, phone=phone))
    assert screens[-1].startswith("END ") and reference_in(screens[-1])
    for shown in screens:
        limit = 182 if sms.encoding(shown) is sms.Encoding.GSM7 else 80
        assert len(shown) <= limit, (len(shown), sms.encoding(shown), shown)
    assert all(sms.encoding(shown) is sms.Encoding.GSM7 for shown in screens[2:])


async def supervisor(redis: Redis) -> dict[str, str]:
    token = await operators.add_operator(redis, name=f"sup-{next(_phones)}",
                                         role=Role.SUPERVISOR, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


async def test_effacer_closes_the_phones_open_cases_and_takes_them_out_of_the_queue(
        gateway: Gateway, redis: Redis) -> None:
    phone = new_phone()
    reference = await return_request_by_sms(gateway, phone)
    headers = await supervisor(redis)
    queue = (await gateway.client.get(f"{API}/cases?status=new", headers=headers)).json()
    assert reference in [case["reference"] for case in queue["items"]]

    assert "2 pour annuler" in await gateway.text("EFFACER", phone=phone)
    assert await gateway.text("1", phone=phone) == FLOW.text("erased", "fr")

    case = await read_case(redis, reference)
    assert case.status == "closed" and case.phone is None and case.answers == {}
    queue = (await gateway.client.get(f"{API}/cases?status=new", headers=headers)).json()
    assert reference not in [case["reference"] for case in queue["items"]]
    events = (await gateway.client.get(f"{API}/cases/{reference}/events",
                                       headers=headers)).json()
    closing = [e for e in events if e["action"] == "status_changed"]
    assert closing and closing[-1]["detail"] == {"from": "new", "to": "closed",
                                                 "reason": "erased"}, events
    status = await gateway.text(f"SUIVI {reference}", phone=phone)
    assert FLOW.text("status_closed", "fr") in status
    assert FLOW.text("status_new", "fr") not in status


async def test_effacer_works_for_a_phone_that_sent_stop(gateway: Gateway, redis: Redis) -> None:
    phone = new_phone()
    await gateway.text("Bonjour", phone=phone)
    await gateway.text("1", phone=phone)
    done = ""
    for typed in ["4", "1", "5", "1", "4"]:  # a call-back: consent, topic skipped, safe, any time
        done = await gateway.text(typed, phone=phone)
    reference = reference_in(done)
    assert await gateway.text("STOP", phone=phone) == FLOW.text("opted_out", "fr")
    assert await gateway.text("bonjour", phone=phone) == ""
    assert FLOW.text("erase_confirm", "fr") == await gateway.text("Effacer", phone=phone)
    assert await gateway.text("1", phone=phone) == FLOW.text("erased", "fr")
    case = await read_case(redis, reference)
    assert case.status == "closed" and case.phone is None
    assert await gateway.text("bonjour", phone=phone) == ""  # the opt-out itself is kept


async def test_a_call_back_asks_topic_safety_and_time_and_its_priority_follows_the_topic(
        gateway: Gateway, redis: Redis) -> None:
    phone = new_phone()
    await gateway.text("Bonjour", phone=phone)
    await gateway.text("2", phone=phone)  # English
    # From the main menu: the topic is asked (optional), then safety and time.
    assert "we keep your number" in await gateway.text("4", phone=phone)
    topic = await gateway.text("1", phone=phone)  # consent given
    assert "What is it about?" in topic and "5 Other, skip" in topic
    assert "safe" in await gateway.text("1", phone=phone)  # going home
    assert "When can we call?" in await gateway.text("2", phone=phone)  # not safe to call
    done = await gateway.text("3", phone=phone)  # evening
    normal = await read_case(redis, reference_in(done))
    assert normal.kind == "callback" and normal.priority == "normal"
    assert normal.answers == {"topic": "return", "call_safe": "no", "call_time": "evening"}

    # From the trafficking page the topic is known, and the case is urgent.
    for typed in ["MENU", "1", "2", "1"]:  # info, trafficking, its first two pages
        await gateway.text(typed, phone=phone)
    assert "1 Call me back" in await gateway.text("1", phone=phone)  # "What to do"
    asked = await gateway.text("1", phone=phone)  # the call-back consent
    assert "we keep your number" in asked
    assert "safe" in await gateway.text("1", phone=phone)  # no topic question
    await gateway.text("1", phone=phone)
    done = await gateway.text("4", phone=phone)
    urgent = await read_case(redis, reference_in(done))
    assert urgent.priority == "urgent"
    assert urgent.answers == {"topic": "trafficking", "call_safe": "yes", "call_time": "any"}


async def test_a_second_return_request_names_the_open_one_and_asks_if_same_person(
        gateway: Gateway, redis: Redis) -> None:
    phone = new_phone()
    reference = await return_request_by_sms(gateway, phone)

    await gateway.text("MENU", phone=phone)
    asked = await gateway.text("2", phone=phone)
    assert f"({reference[:4]}-{reference[4:]})" in asked and "pour vous" in asked, asked
    same = await gateway.text("1", phone=phone)  # the same person: its status, no duplicate
    assert reference_in(same) == reference and FLOW.text("status_new", "fr") in same
    assert "Annuler mon retour" in same

    # Someone else on the same phone: a new request, after consent.
    await gateway.text("MENU", phone=phone)
    await gateway.text("2", phone=phone)
    assert "J'accepte" in await gateway.text("2", phone=phone)

    # Over USSD, the same question; no open request (withdrawn) means straight to consent.
    session = new_session()
    assert "Aide aux migrants" in await gateway.dial(session, phone=phone)
    assert "pour vous" in await gateway.press(session, "2", phone=phone)
    for typed in ["1", "1", "1"]:  # follow it, withdraw, yes
        await gateway.press(session, typed, phone=phone)
    assert (await read_case(redis, reference)).status == "withdrawn"
    await gateway.text("MENU", phone=phone)
    assert "J'accepte" in await gateway.text("2", phone=phone)
