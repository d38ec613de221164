"""Whatever a phone sends, the engine answers within the channel's limits and never raises."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.engine import sms, speech
from bot.engine.render import USSD_CONTINUE, USSD_END
from bot.engine.session import Profile, Session, StepContext
from bot.types import Channel
from tests.factories import Phone, default_flow

keypad = st.sampled_from(["0", "00", "98", "1", "2", "3", "4", "5", "6", "9", "#", "*", "*#"])
inputs = st.one_of(
    keypad,
    keypad,
    st.text(alphabet="0123456789*#", max_size=12),
    st.text(max_size=40),
    st.just("🙂🙂🙂"),
    st.just("x" * 1000),
    st.just(""),
    st.just("Aminata Traoré"),
    st.just("1234-5671"),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    sequence=st.lists(inputs, max_size=40),
    channel=st.sampled_from(list(Channel)),
    language=st.sampled_from(["fr", "en", "bm"]),
)
def test_random_inputs_never_raise_and_screens_fit(sequence: list[str], channel: Channel,
                                                   language: str) -> None:
    phone = Phone(default_flow(), channel,
                  context=StepContext(channel=channel, profile=Profile(language)))
    for text in [None, *sequence]:
        reply = phone.reply if text is None else phone.send(text)
        assert reply.text.strip()
        if channel is Channel.USSD:
            prefix = USSD_END if reply.end else USSD_CONTINUE
            assert len(prefix + reply.text) <= 182, reply.text
        elif channel is Channel.VOICE:
            script = speech.script_of(reply, phone.compiled.flow)
            assert script.parts and all(part.text.strip() or part.audio for part in script.parts)
            assert (script.expect is speech.Expect.NOTHING) == reply.end
        else:
            assert sms.segments(reply.text) <= 3, reply.text
        if reply.end:
            phone.session = None
            phone.send("")


@settings(max_examples=300, deadline=None)
@given(answers=st.dictionaries(st.text(), st.text(), max_size=4), history=st.lists(
    st.text(alphabet=st.characters(blacklist_categories=("Zs", "Cc", "Cs")), min_size=1),
    max_size=5), hint=st.none() | st.text(), steps=st.integers(0, 10**6))
def test_a_session_is_stored_as_the_standard_library_writes_it(
        answers: dict[str, str], history: list[str], hint: str | None, steps: int) -> None:
    """orjson writes the session (`compact_json`): the very text json.dumps would, so every
    session stored before reads and compares the same (the draft stored as the session)."""
    session = Session(state="ask_name", language="fr", answers=answers, vars=dict(answers),
                      history=history, hint=hint, steps=steps, draft_id="d1")
    values = json.loads(session.to_json())
    assert session.to_json() == json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    assert Session.from_json(session.to_json()) == session
