"""Follow-up check-ins sent by the worker and answered through the webhooks (docs/spec.md §11):
by SMS (the replies go through the ordinary conversation loop) and by a call we place
(Twilio comes back to the voice webhook with Direction=outbound-api). The worker, the
app and a fake Twilio REST API (messages and calls), on one server, Sentinel, Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from bot.cases import followups
from bot.cases import service as case_service
from bot.cases.followups import CALL_AGAIN_AFTER
from bot.cases.model import CaseStatus, Priority
from bot.engine import sms
from bot.jobs import followups as followup_jobs
from bot.privacy import pseudonym
from bot.store import cases, keys, phone_state
from bot.store import followups as followup_store
from bot.store.cases import read_case
from bot.types import Channel
from tests.fake_twilio import FROM_NUMBER, FakeTwilio, fake_twilio
from tests.integration.admin_support import T0, return_request
from tests.integration.voice_support import Caller, Heard
from tests.integration.webhooks_support import (
    PII_KEY,
    PUBLIC_URL,
    Gateway,
    gateway_settings,
    reference_in,
    running_app,
)
from tests.integration.worker_support import (
    ON_EVERY_DEPLOYMENT,
    Clock,
    Harness,
    actions,
    harness,
    worker_env,
)

MIGRANT = "+22376000501"
ONCALL = "+22370111111"
DAY = timedelta(days=1)
TO_RETURNED = (CaseStatus.CONTACTED, CaseStatus.IN_PROGRESS, CaseStatus.RETURN_ARRANGED,
               CaseStatus.RETURNED)
# start; income none, debt heavy, housing not sure, services yes, community well;
# safe: "no, I am in danger" (an alarm: no more questions, the call offered at once)
STRUGGLING = ["1", "3", "3", "2", "1", "1", "3"]
EXPECTED = {"economic": 0.0, "social": 0.833, "psychosocial": 0.0, "composite": 0.278}


@dataclass
class World:
    gateway: Gateway
    worker: Harness
    clock: Clock
    fake: FakeTwilio

    async def tick(self) -> None:
        """One second of the worker: what is due is queued, then every queued job runs."""
        await followup_jobs.tick(self.worker.ctx)
        await self.worker.cycle()


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
async def world(redis: Redis, redis_server: object, tmp_path: object,
                fake: FakeTwilio) -> AsyncIterator[World]:
    app_settings = gateway_settings(redis_server.url, tmp_path)  # type: ignore[attr-defined]
    env = worker_env(app_settings, fake, public_url=PUBLIC_URL, oncall_numbers=ONCALL)
    clock = Clock(T0)  # the app's and the worker's
    async with running_app(app_settings, clock=clock) as gateway, \
            harness(env, clock=clock) as worker:
        yield World(gateway, worker, clock, fake)


async def returned_case(redis: Redis, *, language: str, channel: str = "sms",
                        phone: str = MIGRANT, at: datetime = T0, **answers: str) -> str:
    new_case = replace(return_request(phone=phone, followup_consent="yes", **answers),
                       language=language, channel=channel)
    reference = await cases.create_case(redis, new_case=new_case, pii_key=PII_KEY.encode())
    for status in TO_RETURNED:
        await case_service.update_case(redis, reference=reference, actor="operator:ana",
                                       now=at, status=status)
    return reference


async def entries(redis: Redis, reference: str) -> list[followup_store.Entry]:
    record = await followup_store.read(redis, reference)
    assert record is not None
    return list(record.entries)


@ON_EVERY_DEPLOYMENT
async def test_a_bambara_sms_check_in_walked_to_an_urgent_call_back(
        redis: Redis, world: World) -> None:
    reference = await returned_case(redis, language="bm")
    world.clock.now = T0 + 30 * DAY - timedelta(seconds=1)
    await world.tick()
    assert world.fake.sent_to(MIGRANT) == []  # not due yet
    world.clock.now = T0 + 30 * DAY
    await world.tick()
    (first,) = world.fake.sent_to(MIGRANT)
    body = str(first["body"])
    assert "Nyininkali 9 surun" in body and "1 K'a daminè" in body  # Bambara, GSM-7 spelling
    assert sms.encoding(body) is sms.Encoding.GSM7
    sent = await entries(redis, reference)
    assert [(e.id, e.status) for e in sent] == [(1, "t"), (2, "s"), (3, "s")]
    # The phone is "in the survey" for HELPLINE_FOLLOWUP_TTL (3 days), not an SMS day.
    state = await redis.get(keys.phone_state(pseudonym(MIGRANT, PII_KEY.encode())))
    lasts = phone_state.expiries(state)["sm"]
    server_now, _ = await redis.time()  # the clock the script set it by
    # HELPLINE_FOLLOWUP_TTL (3 days), not the SMS session's 1 day.
    assert lasts is not None and 2 * 86400 < lasts - server_now <= 3 * 86400
    await world.tick()
    assert len(world.fake.sent_to(MIGRANT)) == 1  # once

    gateway = world.gateway
    assert "Baara walima wari donta" in await gateway.text("1", phone=MIGRANT)
    for key in STRUGGLING[1:]:
        alarmed = await gateway.text(key, phone=MIGRANT)
    assert "Polisi 17" in alarmed and "k'i wele wa?" in alarmed  # at once, not at the end
    done = await gateway.text("1", phone=MIGRANT)  # yes, call me
    assert "An ka jèkulu bèna i wele" in done and "Polisi 17" in done
    callback = await read_case(redis, reference_in(done))
    assert callback.kind == "callback" and callback.priority is Priority.URGENT
    assert callback.related == reference and callback.phone == MIGRANT
    assert callback.answers["alarm"] == "yes" and callback.answers["fu_safe"] == "danger"
    answered = (await entries(redis, reference))[0]
    assert answered.status == "a" and answered.flags == "AC"
    assert answered.scores == (EXPECTED["economic"], EXPECTED["social"],
                               EXPECTED["psychosocial"])
    events = dict(await actions(redis, reference))
    assert events["followup_answered"]["scores"] == EXPECTED
    # On-call hears of the urgent call-back like any urgent case.
    await world.worker.cycle()
    (notice,) = world.fake.sent_to(ONCALL)
    shown = f"{callback.reference[:4]}-{callback.reference[4:]}"
    assert "urgent case" in str(notice["body"]) and shown in str(notice["body"])


@ON_EVERY_DEPLOYMENT
async def test_a_check_in_unanswered_expires_and_a_stop_cancels_the_rest(
        redis: Redis, world: World, settings: object) -> None:
    quiet = await returned_case(redis, language="fr")
    stopped = await returned_case(redis, language="fr", phone="+22376000502")
    world.clock.now = T0 + 30 * DAY
    await world.tick()
    assert len(world.fake.sent_to(MIGRANT)) == 1
    ttl = world.worker.deps.settings.followup_ttl
    world.clock.now += timedelta(seconds=ttl - 1)
    await world.tick()
    assert (await entries(redis, quiet))[0].status == "t"
    world.clock.now += timedelta(seconds=1)
    await world.tick()
    assert (await entries(redis, quiet))[0].status == "x"
    assert ("followup_expired", {"reason": "no_answer", "followups": [1]}) in await actions(
        redis, quiet)

    await phone_state.update_profile(redis, pseudonym=pseudonym(
        "+22376000502", PII_KEY.encode()), ttl=1, opt_out=True)
    world.clock.now = T0 + 90 * DAY
    await world.tick()
    assert [e.status for e in await entries(redis, stopped)] == ["x", "c", "c"]
    assert len(world.fake.sent_to("+22376000502")) == 1  # the first, before the STOP
    assert ("followups_cancelled", {"reason": "opted_out", "followups": [2, 3]}) in \
        await actions(redis, stopped)


async def test_a_check_in_due_at_night_waits_for_the_quiet_hours_to_end(
        redis: Redis, world: World) -> None:
    # The operator recorded the return at 22:00 in Bamako (UTC): every check-in falls due
    # at 22:00, inside the default quiet hours (21-07), by SMS and by call alike.
    night = T0.replace(hour=22)
    texted = await returned_case(redis, language="fr", at=night)
    called = await returned_case(redis, language="fr", channel="voice", phone="+22376000503",
                                 at=night)
    for hours in (0, 4, 8.99):  # 22:00, 02:00, 06:59
        world.clock.now = night + 30 * DAY + timedelta(hours=hours)
        await world.tick()
        assert world.fake.sent_to(MIGRANT) == [] and world.fake.calls == []
        assert [e.status for e in await entries(redis, texted)] == ["s", "s", "s"]
    world.clock.now = night + 30 * DAY + timedelta(hours=9)  # 07:00: the quiet hours end
    await world.tick()
    assert len(world.fake.sent_to(MIGRANT)) == 1
    assert [call["to"] for call in world.fake.calls] == ["+22376000503"]
    assert [e.status for e in await entries(redis, texted)] == ["t", "s", "s"]
    assert [e.status for e in await entries(redis, called)] == ["t", "s", "s"]


class OutboundCaller(Caller):
    """Twilio on a call we placed: the migrant is `To`, our number `From`."""

    async def post(self, url: str, params: dict[str, str], *,
                   signed: bool = True) -> httpx.Response:
        return await super().post(url, {"From": FROM_NUMBER, "To": self.phone,
                                        "Direction": "outbound-api", **params}, signed=signed)


@ON_EVERY_DEPLOYMENT
@pytest.mark.parametrize(("language", "intro", "answered_by"), [
    ("fr", "Depuis votre retour, comment allez-vous ?", "human"),
    # as the French voice reads Bambara; `unknown`: most often a person still silent
    ("bm", "I seginni kofè, i ka kènè wa?", "unknown")])
async def test_a_voice_check_in_is_a_call_we_place_that_speaks_the_survey(
        redis: Redis, world: World, language: str, intro: str, answered_by: str) -> None:
    reference = await returned_case(redis, language=language, channel="voice")
    await world.worker.cycle()  # the reference's confirmation SMS of a request made by voice
    confirmed = len(world.fake.sent_to(MIGRANT))
    world.clock.now = T0 + 30 * DAY
    await world.tick()
    assert len(world.fake.sent_to(MIGRANT)) == confirmed  # a voice check-in sends no SMS
    (placed,) = world.fake.called(MIGRANT)
    assert placed["from"] == FROM_NUMBER
    assert placed["machine_detection"] == "Enable"  # Twilio says who answered (AnsweredBy)
    url = str(placed["url"])
    assert url.startswith(PUBLIC_URL + "/webhooks/twilio/voice?")
    assert parse_qs(urlsplit(url).query) == {"followup": [f"{reference}.1"],
                                             "lang": [language]}
    assert [e.status for e in await entries(redis, reference)] == ["t", "s", "s"]

    caller = OutboundCaller(world.gateway.client, phone=MIGRANT)
    caller.heard = Heard.of(await caller.post(url, {"CallStatus": "in-progress",
                                                    "AnsweredBy": answered_by}))
    assert intro in caller.heard.text
    for key in ["1", "1", "1", "1", "1", "1", "1", "1", "1"]:
        await caller.press(key)
    end = await caller.press("2")  # no call, thank you
    assert end.hangs_up
    (answered, *_) = await entries(redis, reference)
    assert answered.status == "a" and answered.scores == (1.0, 1.0, 1.0)
    events = dict(await actions(redis, reference))
    assert events["followup_answered"]["channel"] == "voice"
    assert events["call_sent"]["followup"] == 1


MACHINE_ANSWERS = ["machine_start", "machine_end_beep", "machine_end_silence",
                   "machine_end_other", "fax"]


@ON_EVERY_DEPLOYMENT
async def test_a_voicemail_that_answers_a_check_in_call_hears_nothing(
        redis: Redis, world: World) -> None:
    """The survey's first words on a mailbox would tell whoever plays it that this person
    is a returnee in touch with the helpline: a machine gets `<Hangup/>` alone. The
    check-in ends unanswered, and the call is placed once more, four hours later."""
    reference = await returned_case(redis, language="fr", channel="voice")
    world.clock.now = T0 + 30 * DAY
    await world.tick()
    (placed,) = world.fake.called(MIGRANT)
    url = str(placed["url"])
    phone = pseudonym(MIGRANT, PII_KEY.encode())
    state_before = await redis.get(keys.phone_state(phone))
    assert [e.status for e in await entries(redis, reference)] == ["t", "s", "s"]
    for answered_by in MACHINE_ANSWERS:  # each its own call (Twilio's values, with Enable)
        machine = OutboundCaller(world.gateway.client, phone=MIGRANT)
        heard = Heard.of(await machine.post(url, {"CallStatus": "in-progress",
                                                  "AnsweredBy": answered_by}))
        assert [verb.tag for verb in heard.verbs] == ["Hangup"], heard.xml
        assert heard.text == "" and "<Say" not in heard.xml and "<Play" not in heard.xml
    # No answer stored, the survey not opened; the check-in expired, one call again (the
    # later machines found it expired already: one event, one new check-in).
    assert await redis.get(keys.phone_state(phone)) == state_before
    first, *scheduled, again = await entries(redis, reference)
    assert (first.status, [e.status for e in scheduled]) == ("x", ["s", "s"])
    assert (again.id, again.origin, again.channel, again.status) == (4, "d", "v", "s")
    assert again.due == int((world.clock.now + CALL_AGAIN_AFTER).timestamp())
    expired = [detail for action, detail in await actions(redis, reference)
               if action == "followup_expired"]
    assert expired == [{"reason": "voicemail", "followups": [1], "redial": 4}]

    world.clock.now += CALL_AGAIN_AFTER - timedelta(seconds=1)
    await world.tick()
    assert len(world.fake.called(MIGRANT)) == 1
    world.clock.now += timedelta(seconds=1)
    await world.tick()
    _, second = world.fake.called(MIGRANT)
    assert parse_qs(urlsplit(str(second["url"])).query)["followup"] == [f"{reference}.4"]
    # A person answering the second call hears the survey.
    person = OutboundCaller(world.gateway.client, phone=MIGRANT)
    heard = Heard.of(await person.post(str(second["url"]), {"CallStatus": "in-progress",
                                                            "AnsweredBy": "human"}))
    assert "Depuis votre retour" in heard.text


@ON_EVERY_DEPLOYMENT
@pytest.mark.parametrize(("call_status", "reason", "again"), [
    ("no-answer", "no_answer", True), ("busy", "busy", True), ("failed", "failed", False)])
async def test_a_check_in_call_nobody_took_is_placed_once_more(
        redis: Redis, world: World, call_status: str, reason: str, again: bool) -> None:
    """Twilio's last status of the call (its StatusCallback names the check-in): busy or
    no answer, the call is placed again four hours later, once; a call that failed (the
    number may not work) is not."""
    reference = await returned_case(redis, language="fr", channel="voice")
    world.clock.now = T0 + 30 * DAY
    await world.tick()
    (placed,) = world.fake.called(MIGRANT)
    callback = str(placed["status_callback"])
    assert callback == f"{PUBLIC_URL}/webhooks/twilio/status?followup={reference}.1"
    twilio = OutboundCaller(world.gateway.client, phone=MIGRANT)
    unsigned = await twilio.post(callback, {"CallStatus": call_status}, signed=False)
    assert unsigned.status_code == 403
    assert [e.status for e in await entries(redis, reference)] == ["t", "s", "s"]
    # A call someone took (`completed`) leaves the check-in as it is.
    assert (await twilio.post(callback, {"CallStatus": "completed"})).status_code == 204
    assert [e.status for e in await entries(redis, reference)] == ["t", "s", "s"]

    assert (await twilio.post(callback, {"CallStatus": call_status})).status_code == 204
    assert (await twilio.post(callback, {"CallStatus": call_status})).status_code == 204
    statuses = [(e.id, e.origin, e.status) for e in await entries(redis, reference)]
    assert statuses[0] == (1, "r", "x")
    assert statuses[3:] == ([(4, "d", "s")] if again else [])
    expired = [detail for action, detail in await actions(redis, reference)
               if action == "followup_expired"]
    assert expired == [{"reason": reason, "followups": [1], **({"redial": 4} if again else {})}]
    world.clock.now += CALL_AGAIN_AFTER
    await world.tick()
    if not again:
        assert len(world.fake.called(MIGRANT)) == 1
        return
    _, second = world.fake.called(MIGRANT)
    callback = str(second["status_callback"])
    assert callback.endswith(f"?followup={reference}.4")
    # Nobody takes the second call either: it expires, and no third call is placed.
    assert (await twilio.post(callback, {"CallStatus": call_status})).status_code == 204
    assert [(e.id, e.status) for e in await entries(redis, reference)][3:] == [(4, "x")]
    world.clock.now += 2 * CALL_AGAIN_AFTER
    await world.tick()
    assert len(world.fake.called(MIGRANT)) == 2


@ON_EVERY_DEPLOYMENT
@pytest.mark.parametrize(("message_status", "reason", "again"), [
    ("undelivered", "not_delivered", True), ("failed", "failed", False)])
async def test_a_check_in_sms_that_never_reached_the_phone_is_sent_once_more(
        redis: Redis, world: World, message_status: str, reason: str, again: bool) -> None:
    """Twilio's status of the check-in's SMS: `undelivered` (the phone was off, out of
    reach) sends it again four hours later, once; `failed` (it could not go) does not."""
    reference = await returned_case(redis, language="fr")
    world.clock.now = T0 + 30 * DAY
    await world.tick()
    (first,) = world.fake.sent_to(MIGRANT)
    for _ in range(2):  # told twice: once
        response = await world.gateway.status(message_status, sid=str(first["sid"]),
                                              error_code="30003")
        assert response.status_code == 204
    statuses = [(e.id, e.origin, e.channel, e.status) for e in await entries(redis, reference)]
    assert statuses[0] == (1, "r", "s", "x")
    assert statuses[3:] == ([(4, "d", "s", "s")] if again else [])
    expired = [detail for action, detail in await actions(redis, reference)
               if action == "followup_expired"]
    assert expired == [{"reason": reason, "followups": [1], **({"redial": 4} if again else {})}]
    world.clock.now += CALL_AGAIN_AFTER
    await world.tick()
    sent = world.fake.sent_to(MIGRANT)
    if not again:
        assert len(sent) == 1
        return
    _, second = sent
    assert "Depuis votre retour" in str(second["body"])  # the survey's first question again
    assert [(e.id, e.status) for e in await entries(redis, reference)][3:] == [(4, "t")]


@ON_EVERY_DEPLOYMENT
async def test_an_answer_before_the_second_call_drops_it(redis: Redis, world: World) -> None:
    """Nobody took the check-in call; an operator then asks for one now, a person answers
    it: the second call, four hours after the first, is not placed."""
    reference = await returned_case(redis, language="fr", channel="voice")
    world.clock.now = T0 + 30 * DAY
    await world.tick()
    (placed,) = world.fake.called(MIGRANT)
    twilio = OutboundCaller(world.gateway.client, phone=MIGRANT)
    await twilio.post(str(placed["status_callback"]), {"CallStatus": "no-answer"})
    assert [(e.id, e.origin, e.status) for e in await entries(redis, reference)][3:] == [
        (4, "d", "s")]
    world.clock.now += timedelta(minutes=30)
    now = await followups.request_now(redis, reference=reference, channel=Channel.VOICE,
                                      opted_out=False, ttl=3600, actor="operator:ana",
                                      now=world.clock.now)
    await world.tick()
    _, asked = world.fake.called(MIGRANT)
    assert parse_qs(urlsplit(str(asked["url"])).query)["followup"] == [f"{reference}.{now.id}"]
    person = OutboundCaller(world.gateway.client, phone=MIGRANT)
    person.heard = Heard.of(await person.post(str(asked["url"]), {"AnsweredBy": "human"}))
    for key in ["1", "1", "1", "1", "1", "1", "1", "1", "1"]:
        await person.press(key)
    assert (await person.press("2")).hangs_up  # no call, thank you
    assert [(e.id, e.status) for e in await entries(redis, reference)][3:] == [
        (4, "c"), (now.id, "a")]
    answered = [detail for action, detail in await actions(redis, reference)
                if action == "followup_answered"]
    assert [(d["followups"], d["calls_dropped"]) for d in answered] == [([now.id], [4])]
    world.clock.now += CALL_AGAIN_AFTER
    await world.tick()
    assert len(world.fake.called(MIGRANT)) == 2  # the first call and the operator's


@ON_EVERY_DEPLOYMENT
async def test_an_inbound_call_is_not_a_check_in_even_with_the_parameter(
        redis: Redis, world: World) -> None:
    reference = await returned_case(redis, language="fr", channel="voice")
    caller = Caller(world.gateway.client, phone=MIGRANT)
    url = f"{PUBLIC_URL}/webhooks/twilio/voice?followup={reference}.1&lang=fr"
    heard = Heard.of(await caller.post(url, {"CallStatus": "ringing"}))
    assert "Depuis votre retour" not in heard.text  # the main menu, as any call
    # AnsweredBy only means something on a call we placed: a caller is never hung up on.
    caller = Caller(world.gateway.client, phone=MIGRANT)
    heard = Heard.of(await caller.post(url, {"CallStatus": "ringing",
                                             "AnsweredBy": "machine_start"}))
    assert heard.first("Gather").said and not heard.hangs_up
