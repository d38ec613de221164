"""The pure engine, driven as a phone would drive it, on the small test flow."""

from __future__ import annotations

import pytest
from transitions import Machine

from bot.cases.model import CaseKind, Priority, derive_priority
from bot.engine.session import (
    CaseView,
    CreateCase,
    DiscardDraft,
    Draft,
    Profile,
    SaveDraft,
    SetLanguage,
    StepContext,
    WithdrawCase,
)
from bot.types import Channel
from tests.factories import Phone, default_flow, mini

RETURN_REQUEST = ["2", "1", "Awa Diarra", "1"]


def test_first_screen_is_the_start_menu() -> None:
    phone = Phone(mini())
    assert phone.reply.text.startswith("Accueil\n1 Infos")
    assert phone.session is not None and phone.session.state == "main"


def test_a_return_request_creates_one_case_with_its_answers_and_consent() -> None:
    phone = Phone(mini())
    for text in RETURN_REQUEST:
        phone.send(text)
    assert "Nom: Awa Diarra. Mineur: Oui" in phone.reply.text
    phone.send("1")
    creates = [e for e in phone.effects if isinstance(e, CreateCase)]
    assert len(creates) == 1
    created = creates[0]
    assert created.kind == "return_request"
    assert created.answers == {"name": "Awa Diarra", "under_18": "yes"}
    assert created.consent_at is not None and created.text_version == "t1"
    assert DiscardDraft() in phone.effects
    assert phone.reply.end
    assert phone.session is not None and phone.session.answers == {}


def test_every_answer_of_a_return_request_is_kept_as_a_draft() -> None:
    phone = Phone(mini())
    phone.send("2")
    phone.send("1")
    phone.send("Awa Diarra")
    assert SaveDraft() in phone.effects  # the session is the draft
    assert phone.session is not None
    draft = Draft.of(phone.session)
    assert draft is not None and draft.state == "minor"
    assert draft.answers == {"name": "Awa Diarra"}


def test_refusing_consent_keeps_nothing() -> None:
    phone = Phone(mini())
    phone.send("2")
    phone.send("2")
    assert phone.reply.text == "Rien n'est gardé."
    assert phone.reply.end
    assert DiscardDraft() in phone.effects
    assert not any(isinstance(e, CreateCase | SaveDraft) for e in phone.effects)
    assert phone.session is not None and phone.session.answers == {}


def test_zero_goes_back_and_double_zero_goes_home() -> None:
    phone = Phone(mini())
    phone.send("2")
    phone.send("1")
    assert phone.reply.text.startswith("Votre nom ?")
    phone.send("0")
    assert phone.reply.text.startswith("On garde vos réponses")
    phone.send("1")
    phone.send("00")
    assert phone.reply.text.startswith("Accueil")


def test_wrong_input_gets_a_hint_and_three_strikes_go_home() -> None:
    phone = Phone(mini())
    phone.send("2")
    phone.send("9")
    assert phone.reply.text.startswith("Non compris.\nOn garde vos réponses")
    phone.send("x")
    assert phone.session is not None and phone.session.state == "consent"
    phone.send("🙂")
    # Home again, without the hint of the screen left behind (mini has no too_many_tries).
    assert phone.reply.text.startswith("Accueil")
    assert phone.session.state == "main"


def test_98_shows_the_next_page_and_0_the_previous() -> None:
    phone = Phone(mini())
    first = phone.send("1")
    assert first.pages > 1 and first.text.endswith("98 Suite")
    second = phone.send("98")
    assert second.page == 1 and second.text != first.text
    assert phone.send("0").text == first.text


def test_an_unverified_number_is_never_shown_as_certain() -> None:
    phone = Phone(mini())
    assert "80 00 11 32 (à confirmer)" in phone.send("1").text


@pytest.mark.parametrize(("language", "mark"), [("fr", "(à confirmer)"), ("en", "(unconfirmed)")])
def test_an_unverified_centre_is_never_named_as_certain(language: str, mark: str) -> None:
    phone = Phone(default_flow(), context=StepContext(channel=Channel.USSD,
                                                      profile=Profile(language)))
    for key in ("1", "4"):  # protection info, where to find help
        screen = phone.send(key).text
    house = default_flow().flow.contacts["gao_maison_migrant"]
    assert not house.verified
    assert f"{house.name[language]} {mark}:" in screen


# Through consent, name, nationality, country, city: the first sensitive question.
TO_UNDER_18 = ["2", "1", "Awa Diarra", "Mali", "Libye", "Sebha"]


def test_skipping_the_sensitive_questions_keeps_no_answer_and_no_priority() -> None:
    phone = Phone(default_flow(), context=StepContext(channel=Channel.USSD,
                                                      profile=Profile("fr")))
    for text in TO_UNDER_18:
        phone.send(text)
    assert "3 Passer" in phone.reply.text
    phone.send("1")  # under 18: yes
    phone.send("0")  # back to the question: the person changes their mind
    for text in ["3", "2", "3", "3", "3", "1", "1", "1", "1"]:
        # skip under 18, medical: no, skip pregnant, trafficking, disability; document,
        # SMS safe, follow-up: yes; confirm
        phone.send(text)
    created = [e for e in phone.effects if isinstance(e, CreateCase)]
    assert len(created) == 1, phone.reply.text
    answers = created[0].answers
    for skipped in ("under_18", "pregnant", "trafficking_or_violence", "disability"):
        assert skipped not in answers
    assert answers["medical"] == "no" and answers["travel_document"] == "yes"
    assert derive_priority(CaseKind.RETURN_REQUEST, answers) is Priority.NORMAL


def test_set_language_switches_texts_and_is_remembered() -> None:
    phone = Phone(mini())
    reply = phone.send("4")
    assert reply.text.startswith("Home")
    assert SetLanguage("en") in phone.effects


def test_a_remembered_language_is_used_from_the_first_screen() -> None:
    phone = Phone(mini(), context=StepContext(channel=Channel.SMS, profile=Profile("en")))
    assert phone.reply.text.startswith("Home")


def test_a_draft_is_offered_and_resumed_with_its_answers() -> None:
    draft = Draft(state="minor", language="fr", answers={"name": "Awa Diarra"},
                  history=("main", "consent", "name"), draft_id="d1", consent_at="2026-11-28")
    phone = Phone(mini(), context=StepContext(channel=Channel.USSD, draft=draft))
    assert phone.reply.text.startswith("Demande non finie")
    assert phone.send("1").text.startswith("Moins de 18 ans ?")
    phone.send("2")
    phone.send("1")
    created = next(e for e in phone.effects if isinstance(e, CreateCase))
    assert created.answers == {"name": "Awa Diarra", "under_18": "no"}
    assert created.idempotency_key == "d1"


def test_declining_a_draft_discards_it() -> None:
    draft = Draft(state="minor", language="fr", answers={"name": "A"}, history=(),
                  draft_id="d1", consent_at=None)
    phone = Phone(mini(), context=StepContext(channel=Channel.USSD, draft=draft))
    phone.send("2")
    assert DiscardDraft() in phone.effects
    assert phone.reply.text.startswith("Accueil")


@pytest.mark.parametrize("typed", ["1234-5672", "12345617", "2134-5671", "1234567"])
def test_a_mistyped_reference_is_answered_check_the_number(typed: str) -> None:
    phone = Phone(mini())
    phone.send("3")
    assert phone.send(typed).text.startswith("Vérifiez le numéro.\nVotre référence ?")


def _view(status: str, *, mine: bool) -> CaseView:
    return CaseView(reference="12345671", kind="return_request", status=status,
                    is_callers=mine, can_withdraw=mine)


def test_following_ones_own_request_offers_withdrawal() -> None:
    phone = Phone(mini())
    phone.send("3")
    reply = phone.send("1234-5671", lookups={"12345671": _view("new", mine=True)})
    assert reply.text.startswith("1234-5671: reçue\n1 Annuler")
    phone.send("1")
    assert WithdrawCase("12345671") in phone.effects


def test_following_another_phones_request_shows_status_only() -> None:
    phone = Phone(mini())
    phone.send("3")
    reply = phone.send("12345671", lookups={"12345671": _view("in_progress", mine=False)})
    assert reply.text == "1234-5671: en cours"
    assert reply.end


def test_an_unknown_reference_is_said_so() -> None:
    phone = Phone(mini())
    phone.send("3")
    assert phone.send("12345671").text == "Inconnu."


def test_steps_fire_the_shared_machine_and_never_build_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = mini()
    built: list[object] = []
    original = Machine.__init__

    def counting_init(self: Machine, *args: object, **kwargs: object) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Machine, "__init__", counting_init)
    phone = Phone(compiled)
    for text in [*RETURN_REQUEST, "1", "", "3", "12345671"]:
        phone.send(text)
    assert built == []
    assert compiled.machine.models == []


def test_a_step_leaves_the_callers_session_untouched() -> None:
    phone = Phone(mini())
    phone.send("2")
    phone.send("1")
    before = phone.session
    assert before is not None
    snapshot = before.to_json()
    phone.send("Awa Diarra")
    assert before.to_json() == snapshot
    assert phone.session is not before and phone.session is not None
    assert phone.session.answers == {"name": "Awa Diarra"}


def test_going_back_forgives_earlier_slips() -> None:
    phone = Phone(mini())
    phone.send("2")
    phone.send("9")
    phone.send("9")
    phone.send("0")
    assert phone.session is not None and phone.session.state == "main"
    assert phone.send("9").text.startswith("Non compris.\nAccueil")
    assert phone.session.strikes == 1


def test_the_steps_copy_of_a_session_keeps_every_field() -> None:
    from dataclasses import fields

    from bot.engine.session import Session

    session = Session(state="name", language="bm", answers={"a": "b"}, vars={"reference": "1"},
                      history=["main"], page=2, strikes=1, hint="invalid", resuming=True,
                      draft_id="d", consent_at="t", drafting=True, steps=7)
    assert {f.name for f in fields(Session)} == set(vars(session))
    copied = session.copy()
    assert copied == session
    assert copied.answers is not session.answers and copied.history is not session.history


def test_98_pages_through_a_hinted_screen_and_is_never_a_wrong_answer_meanwhile() -> None:
    phone = Phone(mini())
    phone.send("1")  # a long screen: two pages
    hinted = phone.send("7")
    assert hinted.text.startswith("Non compris.") and hinted.pages > 1
    for _ in range(hinted.pages - 1):
        phone.send("98")
    assert phone.session is not None and phone.session.state == "info"
    assert phone.session.strikes == 1 and "\n1 Accueil\n" in phone.reply.text
    assert phone.send("1").text.startswith("Accueil")  # the option still works
