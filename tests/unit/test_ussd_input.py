"""USSD history: the new input is what follows the inputs already applied."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.engine.receipts import HopInput, new_input


def hop(history: str, *, applied: str, seen: str = "s1", session: str = "s1") -> HopInput:
    return new_input(seen_session=seen, applied=applied, session_id=session, history=history)


def test_a_new_gateway_session_restarts_the_conversation() -> None:
    assert hop("", applied="", seen="", session="s1") == HopInput(restart=True)
    assert hop("1*2", applied="1*2*3", seen="s0", session="s1") == HopInput(restart=True)


def test_a_direct_dial_starts_the_conversation_and_is_not_applied() -> None:
    assert hop("2", applied="", seen="", session="s1") == HopInput(restart=True)


def test_the_new_input_follows_the_applied_history() -> None:
    assert hop("1", applied="") == HopInput(text="1")
    assert hop("1*2", applied="1") == HopInput(text="2")
    assert hop("1*Awa Diarra", applied="1") == HopInput(text="Awa Diarra")
    assert hop("2*1*12*3", applied="2*1") == HopInput(text="12*3")


def test_a_repeated_or_older_hop_replays_without_advancing() -> None:
    assert hop("1*2", applied="1*2") == HopInput(replay=True)
    assert hop("1", applied="1*2") == HopInput(replay=True)
    assert hop("", applied="1*2") == HopInput(replay=True)


def test_a_history_that_no_longer_extends_is_read_from_its_last_input() -> None:
    assert hop("3", applied="1*2") == HopInput(text="3")
    assert hop("9*9*4", applied="1*2") == HopInput(text="4")


@given(st.text(alphabet="0123456789*#ab", max_size=600), st.text(alphabet="0123*", max_size=40))
def test_any_history_gives_one_input_without_error(history: str, applied: str) -> None:
    result = hop(history, applied=applied)
    assert not (result.restart and result.replay)
    assert len(result.text) <= len(history)
