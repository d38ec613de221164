"""Receipts: the last answers of a phone, bounded, round-tripped through JSON."""

from __future__ import annotations

from bot.engine.receipts import MAX_ANSWERS, TEXTS_KEPT, Receipts, message_digest


def test_an_answer_is_found_by_its_message_digest() -> None:
    digest = message_digest("SM0123")
    receipts = Receipts().answered(digest, "Bienvenue", end=False)
    again = Receipts.from_json(receipts.to_json())
    answer = again.answer_for(digest)
    assert answer is not None and answer.text == "Bienvenue" and not answer.end
    assert again.answer_for(message_digest("SM0124")) is None


def test_only_the_last_answers_are_kept() -> None:
    receipts = Receipts()
    for number in range(MAX_ANSWERS + 3):
        receipts = receipts.answered(message_digest(f"SM{number}"), f"reply {number}", False)
    assert len(receipts.answers) == MAX_ANSWERS
    assert receipts.answer_for(message_digest("SM0")) is None
    last = receipts.last
    assert last is not None and last.text == f"reply {MAX_ANSWERS + 2}"


def test_ussd_history_and_pending_keyword_survive_json() -> None:
    receipts = Receipts(ussd_session="ATUid_1", ussd_applied="1*2", pending="erase")
    assert Receipts.from_json(receipts.to_json()) == receipts
    assert Receipts.from_json(None) == Receipts()


def test_digests_are_short_and_stable() -> None:
    assert message_digest("x" * 5000) == message_digest("x" * 5000)
    assert len(message_digest("x" * 5000)) == 10


def test_only_the_last_answers_keep_their_text() -> None:
    receipts = Receipts()
    for number in range(MAX_ANSWERS):
        receipts = receipts.answered(message_digest(f"SM{number}"), f"reply {number}", False)
    texts = [answer.text for answer in receipts.answers]
    older = MAX_ANSWERS - TEXTS_KEPT
    assert texts == [""] * older + [f"reply {n}" for n in range(older, MAX_ANSWERS)]
    old = receipts.answer_for(message_digest("SM0"))
    assert old is not None and old.text == ""  # a late retry is known, not applied again


def test_the_compact_form_reads_back_the_same() -> None:
    receipts = Receipts(ussd_session="abc", ussd_applied="1*2*Awa", pending="erase")
    receipts = receipts.answered(message_digest("a"), "reply\nwith lines", True)
    receipts = receipts.answered(message_digest("b"), "", False)
    assert Receipts.from_json(receipts.to_json()) == receipts


def test_a_session_reads_back_the_same_in_its_compact_form() -> None:
    from bot.engine.session import Session

    plain = Session(state="main", language="fr")
    full = Session(state="avr_name", language="bm", answers={"name": "Awa"},
                   vars={"reference": "12345678"}, history=["welcome", "main"], page=1,
                   strikes=2, hint="invalid", resuming=True, draft_id="d1",
                   consent_at="2026-12-02T10:00:00+00:00", drafting=True, steps=7)
    for session in (plain, full):
        assert Session.from_json(session.to_json()) == session
    assert plain.to_json() == '["main","fr"]'
