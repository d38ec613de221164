"""Turns: keywords, the silence of an opted-out phone, or a step of the flow."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.engine.receipts import Receipts
from bot.engine.render import Limits
from bot.engine.session import CaseView, Profile, Session
from bot.engine.turns import PENDING_ERASE, Inbound, Turn, tracking_question, turn
from bot.types import Channel
from tests.factories import NOW, default_flow

FLOW = default_flow()
SMS = Limits(Channel.SMS)


def inbound(text: str, **changes: object) -> Inbound:
    base = Inbound(channel=Channel.SMS, text=text, session=None,
                   profile=Profile(language="en"), draft=None, receipts=Receipts(), lookups={},
                   new_id="t1")
    return replace(base, **changes)  # type: ignore[arg-type]


def text_of(name: str, language: str = "en") -> str:
    return FLOW.flow.text(name, language)


def play(text: str, **changes: object) -> Turn:
    return turn(FLOW, inbound(text, **changes), NOW, SMS)


def test_stop_opts_out_once_in_the_phones_language() -> None:
    done = play("Arrêt")
    assert done.reply.text == text_of("opted_out")
    assert done.profile is not None and done.profile.opted_out


@pytest.mark.parametrize("text", ["1", "MENU", "STOP", "hello", "SUIVI 1234-5678"])
def test_an_opted_out_phone_hears_nothing_but_what_it_asks_for(text: str) -> None:
    done = play(text, profile=Profile(language="en", opted_out=True))
    assert done.silent and done.reply.text == "" and done.keep_session


def test_an_opted_out_phone_can_still_erase_its_data() -> None:
    opted_out = Profile(language="en", opted_out=True)
    asked = play("EFFACER", profile=opted_out)
    assert asked.reply.text == text_of("erase_confirm", "en") and asked.pending == PENDING_ERASE
    confirmed = play("1", profile=opted_out, receipts=Receipts(pending=PENDING_ERASE))
    assert confirmed.erase and confirmed.reply.text == text_of("erased", "en")


@pytest.mark.parametrize("text", ["SOS", "urgence", "Au secours !", "EMERGENCY", "dɛmɛ teliman"])
def test_an_emergency_word_is_answered_with_the_numbers_even_when_opted_out(text: str) -> None:
    done = play(text, profile=Profile(language="fr", opted_out=True))
    assert not done.silent and "17" in done.reply.text and "18" in done.reply.text
    assert "au Mali" in done.reply.text  # Mali's numbers: the phone may be in Niger or Libya


@pytest.mark.parametrize("text", ["SOS", "Urgent", "au secours", "EMERGENCY", "DEME TELIMAN"])
def test_an_emergency_word_opens_the_emergency_screen_from_any_state(text: str) -> None:
    mid_form = Session(state="avr_name", language="en", history=["main", "avr_consent"])
    done = play(text, session=mid_form)
    assert done.session is not None and done.session.state == "emergency"
    assert "Police: 17" in done.reply.text and "1 Alert our team" in done.reply.text
    assert done.reply.text.startswith("EMERGENCY in Mali")


def test_erase_can_be_cancelled_with_2() -> None:
    mid_menu = Session(state="main", language="fr")
    cancelled = play("2", session=mid_menu, receipts=Receipts(pending=PENDING_ERASE))
    assert cancelled.reply.text == text_of("erase_cancelled", "fr") and not cancelled.erase
    assert cancelled.keep_session and cancelled.pending == ""


def test_start_from_a_phone_that_never_opted_out_begins_without_welcome_back() -> None:
    done = play("DEBUT", session=Session(state="avr_name", language="fr"))
    assert done.session is not None and done.session.state == "main"
    assert "Bon retour" not in done.reply.text and done.profile is None


def test_start_opts_back_in() -> None:
    done = play("debut", profile=Profile(language="fr", opted_out=True))
    assert done.reply.text == text_of("opted_in", "fr")
    assert done.profile == Profile(language="fr", opted_out=False)


def test_erase_asks_for_confirmation_then_erases_on_1() -> None:
    asked = play("DELETE")
    assert asked.reply.text == text_of("erase_confirm") and asked.pending == PENDING_ERASE
    assert not asked.erase
    confirmed = play("1", receipts=Receipts(pending=PENDING_ERASE))
    assert confirmed.erase and confirmed.reply.text == text_of("erased")


def test_anything_but_1_cancels_a_pending_erasure() -> None:
    done = play("5", receipts=Receipts(pending=PENDING_ERASE),
                session=Session(state="main", language="en"))
    assert not done.erase and done.pending == ""
    assert done.session is not None and done.session.state == "emergency"


def test_menu_restarts_the_conversation() -> None:
    done = play("help", session=Session(state="avr_city", language="en"))
    assert done.session is not None and done.session.state == FLOW.flow.start


def test_suivi_answers_the_status_of_a_reference() -> None:
    view = CaseView(reference="12345671", kind="callback", status="in_progress",
                    is_callers=False, can_withdraw=False)
    done = play("SUIVI 1234-5671", lookups={"12345671": view})
    assert text_of("status_in_progress") in done.reply.text
    assert "1234-5671" in done.reply.text


def test_suivi_alone_asks_for_the_reference() -> None:
    done = play("suivi")
    assert done.session is not None and done.session.state == tracking_question(FLOW.flow)


def test_suivi_with_a_mistyped_reference_says_check_the_number() -> None:
    done = play("SUIVI 1234-5672")
    assert text_of("check_number") in done.reply.text


def test_keywords_do_not_apply_to_ussd() -> None:
    done = play("STOP", channel=Channel.USSD, session=Session(state="avr_name", language="en"))
    assert done.profile is None or not done.profile.opted_out
