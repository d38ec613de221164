"""The worker's pure rules: back-off, SLA periods, error classes, who gets what, no PII out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from hypothesis import given
from hypothesis import strategies as st
from twilio.base.exceptions import TwilioRestException

from bot.cases.model import CaseKind, Priority
from bot.jobs.deps import RetryPolicy
from bot.jobs.errors import Failure
from bot.jobs.messages import confirmation_skip_reason, message_skip_reason
from bot.jobs.oncall import Notice, oncall_numbers, sla_period
from bot.jobs.outbox import jobs_for
from bot.jobs.twilio_rest import classify, rebase
from bot.settings import Settings
from bot.store.deliveries import Recipient
from bot.store.outbox import OutboxEvent

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_back_off_doubles_up_to_its_cap_and_gives_up_at_the_last_try() -> None:
    policy = RetryPolicy(base_seconds=2, cap_seconds=60, max_tries=8)
    assert [policy.delay(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert not policy.gives_up(7) and policy.gives_up(8)


@given(st.integers(min_value=1, max_value=10_000))
def test_back_off_never_shrinks_nor_passes_the_cap(job_try: int) -> None:
    policy = RetryPolicy()
    assert policy.delay(job_try) <= policy.delay(job_try + 1) <= policy.cap_seconds


def test_sla_periods_are_whole_periods_since_creation() -> None:
    assert [sla_period(T0, T0 + timedelta(minutes=m), 15) for m in (0, 14, 15, 29, 30, 61)] \
        == [0, 0, 1, 1, 2, 4]
    assert sla_period(T0, T0 - timedelta(minutes=5), 15) == 0  # a clock behind: no reminder


CONNECTION = ConnectionKey("api.twilio.com", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (TwilioRestException(500, "uri", code=20500), Failure.UNKNOWN),
        (TwilioRestException(503, "uri"), Failure.UNKNOWN),
        (TwilioRestException(429, "uri", code=20429), Failure.RETRY),
        (TwilioRestException(400, "uri", code=21610), Failure.PERMANENT),
        (TwilioRestException(400, "uri", code=21211), Failure.PERMANENT),
        (TwilioRestException(401, "uri", code=20003), Failure.PERMANENT),
        (aiohttp.ClientConnectorError(CONNECTION, OSError(111, "refused")), Failure.RETRY),
        (aiohttp.ConnectionTimeoutError("slow"), Failure.RETRY),
        (aiohttp.SocketTimeoutError("slow"), Failure.UNKNOWN),
        (TimeoutError(), Failure.UNKNOWN),
        (aiohttp.ServerDisconnectedError(), Failure.UNKNOWN),
    ],
)
def test_errors_say_whether_the_message_may_have_gone(error: Exception, failure: Failure) -> None:
    assert classify(error).failure is failure


def test_the_opted_out_code_is_kept() -> None:
    assert classify(TwilioRestException(400, "uri", code=21610)).code == 21610


def test_rest_calls_are_moved_to_the_configured_base_url() -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?To=%2B1"
    assert rebase(url, "http://127.0.0.1:8080") == \
        "http://127.0.0.1:8080/2010-04-01/Accounts/AC1/Messages.json?To=%2B1"
    assert rebase(url, "https://proxy.example/twilio/") == \
        "https://proxy.example/twilio/2010-04-01/Accounts/AC1/Messages.json?To=%2B1"
    assert rebase("https://api.dublin.ie1.twilio.com/x", "http://fake") == "http://fake/x"
    assert rebase(url, "https://api.twilio.com") == url


def recipient(**changes: object) -> Recipient:
    values: dict[str, object] = dict(reference="12345671", phone="+22370000000",
                                     phone_pseudonym="p", language="fr", channel="ussd",
                                     sms_safe="yes", opted_out=False)
    return Recipient(**{**values, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "confirmation", "message"),
    [
        ({}, None, None),
        ({"sms_safe": "no"}, "sms_not_safe", "sms_not_safe"),
        ({"sms_safe": ""}, "sms_safety_not_asked", None),
        ({"opted_out": True}, "opted_out", "opted_out"),
        ({"phone": None}, "erased", "erased"),
    ],
)
def test_who_may_be_written_to(changes: dict[str, object], confirmation: str | None,
                               message: str | None) -> None:
    assert confirmation_skip_reason(recipient(**changes)) == confirmation
    assert message_skip_reason(recipient(**changes)) == message


def event(channel: str, priority: Priority) -> OutboxEvent:
    return OutboxEvent(entry_id="1-0", reference="12345671", kind=CaseKind.EMERGENCY,
                       priority=priority, channel=channel, language="fr", created_at=T0)


def test_each_event_asks_for_its_jobs_under_stable_ids() -> None:
    assert jobs_for(event("ussd", Priority.URGENT)) == [
        ("send_confirmation", ("12345671",), "confirmation:12345671"),
        ("notify_oncall", ("12345671", "urgent"), "oncall:12345671:urgent"),
    ]
    assert jobs_for(event("sms", Priority.HIGH)) == []
    assert jobs_for(event("voice", Priority.HIGH)) == [  # the reference was only spoken
        ("send_confirmation", ("12345671",), "confirmation:12345671")]
    assert jobs_for(event("sms", Priority.URGENT)) == [
        ("notify_oncall", ("12345671", "urgent"), "oncall:12345671:urgent")]


def test_a_notice_carries_no_personal_field() -> None:
    notice = Notice(reference="12345671", event="sla-2", kind="emergency", priority="urgent",
                    level=0, elapsed_minutes=31)
    link = "https://h.example/admin/#/case/12345671"
    assert set(notice.payload(link)) == {"event", "notice", "reference", "kind", "priority",
                                         "escalation_level", "link"}
    assert notice.payload(link)["event"] == "sla"
    assert notice.sms(link, 15) == \
        f"Helpline: urgent case 1234-5671 (emergency) not taken after 15 min. {link}"


def test_oncall_numbers_are_normalised_and_bad_ones_dropped() -> None:
    settings = Settings(oncall_numbers="70 11 11 11; +22370222222, not-a-number,,+22370222222")
    assert oncall_numbers(settings) == ["+22370111111", "+22370222222"]
