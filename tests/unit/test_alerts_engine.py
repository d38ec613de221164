"""Subscribing to alerts in the pure engine: the keywords, the flow's actions, the lint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.engine.receipts import Receipts
from bot.engine.render import Limits
from bot.engine.session import Profile, StepContext, SubscribeAlerts, UnsubscribeAlerts
from bot.engine.turns import ALERTS_AFTER_STOP, Inbound, Turn, is_alert_keyword, turn
from bot.outreach.subscriptions import AlertChannel, Subscription
from bot.settings import DEFAULT_FLOW
from bot.types import Channel
from tests.factories import NOW, Phone, broken_copy, default_flow

FLOW = default_flow()
SMS = Limits(Channel.SMS)


def play(text: str, **changes: Any) -> Turn:
    base = Inbound(channel=Channel.SMS, text=text, session=None,
                   profile=Profile(language="en"), draft=None, receipts=Receipts(), lookups={},
                   new_id="t1")
    return turn(FLOW, replace(base, **changes), NOW, SMS)


@pytest.mark.parametrize("text", ["ALERTES", "alerts", "Alertes !", "LASƆMINI", "lasomini",
                                  "Lasòmini."])
def test_the_alert_words_open_the_consent(text: str) -> None:
    assert is_alert_keyword(FLOW.flow, text)
    done = play(text)
    assert done.session is not None and done.session.state == "alerts_consent"
    assert "At most 4 a month" in done.reply.text and not done.effects


@pytest.mark.parametrize("text", ["alertes nord", "1", "ALERT", "", "les alertes"])
def test_other_words_are_not_alert_keywords(text: str) -> None:
    assert not is_alert_keyword(FLOW.flow, text)


def test_an_opted_out_phone_asking_for_alerts_is_told_how_and_nothing_changes() -> None:
    done = play("ALERTES", profile=Profile(language="fr", opted_out=True))
    assert done.reply.text == FLOW.flow.text(ALERTS_AFTER_STOP, "fr")
    assert done.keep_session and not done.effects and done.profile is None


def test_stop_ends_the_subscription_with_every_other_message() -> None:
    done = play("STOP")
    assert done.profile is not None and done.profile.opted_out
    assert list(done.effects) == [UnsubscribeAlerts()]


def test_start_does_not_subscribe_again() -> None:
    done = play("START", profile=Profile(language="en", opted_out=True))
    assert not done.effects


def walk(channel: Channel, *typed: str, profile: Profile | None = None) -> Phone:
    """A phone that chose French before: it starts at the main menu."""
    phone = Phone(FLOW, channel, StepContext(channel=channel,
                                             profile=profile or Profile(language="fr")))
    for text in ("7", *typed):
        phone.send(text)
    return phone


def test_ussd_asks_whether_sms_is_safe_and_a_call_too() -> None:
    for channel in (Channel.USSD, Channel.VOICE):
        phone = walk(channel, "1")
        assert phone.session is not None and phone.session.state == "alerts_sms_safe"


def test_sms_goes_straight_to_the_country() -> None:
    phone = walk(Channel.SMS, "1")
    assert phone.session is not None and phone.session.state == "alerts_country"


def test_the_country_subscribes_with_the_language_and_the_consent_version() -> None:
    phone = walk(Channel.USSD, "1", "1", "3")
    assert phone.effects == [SubscribeAlerts(country="DZ", language="fr",
                                             text_version=FLOW.flow.version)]
    assert phone.reply.end
    assert phone.session is not None and "alert_country" not in phone.session.answers


@pytest.mark.parametrize("typed", [("2",), ("1", "2")])
def test_refusing_or_an_unsafe_sms_subscribes_nothing(typed: tuple[str, ...]) -> None:
    phone = walk(Channel.USSD, *typed)
    assert phone.reply.end and not phone.effects


def test_a_phone_that_sent_stop_is_not_subscribed_from_ussd() -> None:
    phone = walk(Channel.USSD, "1", "1", "2", profile=Profile(language="fr", opted_out=True))
    assert not phone.effects
    assert phone.reply.text.startswith(FLOW.flow.text(ALERTS_AFTER_STOP, "fr")[:20])


@pytest.mark.parametrize("record", [
    Subscription("NE", "bm", AlertChannel.WHATSAPP, 1_790_000_000, "2026-11-29", "+22376000001"),
    Subscription("ZZ", "fr", AlertChannel.SMS, 0, "", "+33612345678"),
])
def test_a_subscription_record_reads_back(record: Subscription) -> None:
    assert Subscription.from_record(record.to_record()) == record
    assert len(record.to_record()) < 48


def without_country_routes(data: dict[str, Any]) -> None:
    data["states"]["alerts_subscribe"]["to"] = {"done": "alerts_done"}
    data["states"]["alerts_channel"]["to"] = {"sms": "alerts_country"}


def country_not_a_code(data: dict[str, Any]) -> None:
    data["states"]["alerts_country"]["options"][0]["value"] = "Mali"


def keyword_taken(data: dict[str, Any]) -> None:
    data["alerts"]["keywords"].append("STOP")


@pytest.mark.parametrize(("mutate", "expected"), [
    (without_country_routes, ["subscribe_alerts needs `to` for opted_out",
                              "by_channel needs `to` for ussd, voice"]),
    (country_not_a_code, ["options' values are country codes"]),
    (keyword_taken, ["alert keyword 'STOP' is already the keyword of something else"]),
])
def test_the_lint_checks_the_alert_states(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          mutate: Any, expected: list[str]) -> None:
    path = broken_copy(tmp_path, DEFAULT_FLOW, mutate)
    assert main(["flows", "check", str(path)]) == 1
    out = capsys.readouterr().out
    for wanted in expected:
        assert wanted in out, out
