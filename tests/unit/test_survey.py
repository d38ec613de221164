"""The follow-up survey of the default flow (docs/spec.md §11): its scores, its end, its lint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.engine import sms, survey
from bot.engine.render import Limits
from bot.engine.session import CreateCase, Opening, RecordFollowup, StepContext
from bot.engine.step import step
from bot.flows.checked import load_checked
from bot.flows.lint import check
from bot.flows.loader import load_flow
from bot.flows.model import Dimension
from bot.settings import DEFAULT_FLOW
from bot.types import Channel
from tests.factories import NOW, Phone, broken_copy, default_flow

TOKEN = "12345674.2"
# income, debt, housing, services, community, safe, mood, leave; then "call me?"
DOING_WELL = ["1", "1", "1", "1", "1", "1", "1", "1"]


def opened(channel: Channel = Channel.SMS, language: str = "fr") -> Phone:
    compiled = default_flow()
    assert compiled.flow.followup is not None
    return Phone(compiled, channel, StepContext(channel=channel, opening=Opening(
        compiled.flow.followup, language, {survey.FOLLOWUP_ANSWER: TOKEN})))


def walk(phone: Phone, keys: list[str]) -> str:
    text = ""
    for key in keys:
        text = phone.send(key).text
    return text


def test_a_check_in_opens_at_the_survey_in_the_case_language() -> None:
    phone = opened(language="en")
    assert phone.session is not None and phone.session.state == "followup_intro"
    assert phone.session.answers == {survey.FOLLOWUP_ANSWER: TOKEN}
    assert "Since your return, how are you?" in phone.reply.text
    assert "1 Start" in phone.reply.text


def test_a_survey_walked_doing_well_scores_one_everywhere_and_asks_no_call() -> None:
    phone = opened()
    walk(phone, ["1", *DOING_WELL])
    end = phone.send("2").text  # no call, thanks
    assert "Merci pour vos réponses" in end
    recorded = [e for e in phone.effects if isinstance(e, RecordFollowup)]
    assert recorded == [RecordFollowup(followup=TOKEN, alarm=False, call=False, scores={
        "economic": 1.0, "social": 1.0, "psychosocial": 1.0, "composite": 1.0})]
    assert not [e for e in phone.effects if isinstance(e, CreateCase)]
    assert phone.session is not None and phone.session.answers == {}  # scores only are kept


def test_mixed_answers_average_per_dimension_and_skips_do_not_count() -> None:
    phone = opened()
    # income some (0.5), debt skipped; housing no (0), services yes (1), community so-so (0.5);
    # safe not always (0.5), mood rarely (1), leave soon (0)
    walk(phone, ["1", "2", "4", "3", "1", "2", "2", "1", "3"])
    phone.send("2")
    (recorded,) = [e for e in phone.effects if isinstance(e, RecordFollowup)]
    assert recorded.scores == {"economic": 0.5, "social": 0.5, "psychosocial": 0.5,
                               "composite": 0.5}
    assert not recorded.alarm


def test_an_alarm_answer_and_a_call_asked_make_an_urgent_call_back_naming_the_return() -> None:
    phone = opened(language="bm")
    # the first five skipped; in danger (alarm): no more questions, the police number and
    # the call offered at once
    alarmed = walk(phone, ["1", "4", "4", "4", "4", "4", "3"])
    assert "Polisi 17" in alarmed and "k'i wele wa?" in alarmed
    end = phone.send("1").text  # yes, call me
    (created,) = [e for e in phone.effects if isinstance(e, CreateCase)]
    assert created.kind == "callback" and created.related == "12345674"
    assert created.answers["alarm"] == "yes" and created.answers["fu_safe"] == "danger"
    assert survey.FOLLOWUP_ANSWER not in created.answers
    assert created.idempotency_key == f"followup:{TOKEN}"
    (recorded,) = [e for e in phone.effects if isinstance(e, RecordFollowup)]
    assert recorded.alarm and recorded.call
    assert recorded.scores == {"economic": None, "social": None, "psychosocial": 0.0,
                               "composite": 0.0}
    assert "An ka jɛkulu bɛna i wele" in end or "An ka jèkulu bèna i wele" in end


def test_deep_distress_offers_the_call_at_once_and_a_refusal_is_respected() -> None:
    phone = opened(language="en")
    # everything well, then "nearly always, it is too hard" (an alarm): leave is not asked
    alarmed = walk(phone, ["1", "1", "1", "1", "1", "1", "1", "3"])
    assert "Police 17" in alarmed and "Do you want someone from our team to call you?" in alarmed
    assert "migrating again" not in alarmed
    end = phone.send("2").text  # no call
    assert "Thank you for your answers" in end and "Police 17" in end
    (recorded,) = [e for e in phone.effects if isinstance(e, RecordFollowup)]
    assert recorded.alarm and not recorded.call
    assert recorded.scores["psychosocial"] == 0.5  # safe yes (1), distress (0); leave not asked
    assert not [e for e in phone.effects if isinstance(e, CreateCase)]


def test_bambara_on_sms_is_written_in_gsm7() -> None:
    phone = opened(language="bm")
    assert "ɛ" not in phone.reply.text and "ɔ" not in phone.reply.text
    assert "Nyininkali 9 surun" in phone.reply.text
    assert sms.encoding(phone.reply.text) is sms.Encoding.GSM7


def test_scores_come_from_the_flow_and_every_dimension_has_two_questions() -> None:
    flow = default_flow().flow
    asked = survey.questions(flow)
    for dimension in Dimension:
        assert sum(1 for state in asked if state.dimension is dimension) >= 2
    assert survey.score(flow, {}).composite is None
    assert survey.score(flow, {"fu_income": "none", "fu_debt": "none"}).as_dict() == {
        "economic": 0.5, "social": None, "psychosocial": None, "composite": 0.5}


def lint_of(tmp_path: Path, mutate: Any) -> list[str]:
    path = broken_copy(tmp_path, DEFAULT_FLOW, mutate)
    loaded = load_flow(path)
    return check(loaded.flow, loaded.problems).problems


def test_the_default_flow_survey_passes_the_lint() -> None:
    loaded = load_flow(DEFAULT_FLOW)
    assert check(loaded.flow, loaded.problems).ok


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d["states"]["fu_debt"].pop("dimension"),
     "asks 1 question(s) on economic (at least 2)"),
    (lambda d: d["states"]["fu_debt"]["options"][0].update(score=2),
     "score '2' must be a number from 0 to 1"),
    (lambda d: d["states"]["fu_debt"].update(dimension="spiritual"),
     "dimension 'spiritual': one of economic, social, psychosocial"),
    (lambda d: d["states"]["avr_medical"]["options"][0].update(alarm=True),
     "`score` and `alarm` belong on a survey question"),
    (lambda d: d["states"]["followup_finish"].update(to={"thanks": "followup_thanks"}),
     "finish_followup needs `to` for call"),
    (lambda d: d["states"]["followup_finish"].update({"with": {"call": "nothing"}}),
     "finish_followup needs `with: {call: <answer>}`"),
    (lambda d: d.update(followup="nowhere"), "followup 'nowhere' is not a state"),
])
def test_the_lint_names_what_is_wrong_with_a_survey(tmp_path: Path, mutate: Any,
                                                    expected: str) -> None:
    problems = lint_of(tmp_path, mutate)
    assert any(expected in problem for problem in problems), problems


def test_a_flow_without_a_survey_is_fine_and_opens_nothing(tmp_path: Path) -> None:
    def drop(data: dict[str, Any]) -> None:
        data.pop("followup")
        for name in [n for n in data["states"] if n.startswith(("fu_", "followup_"))]:
            del data["states"][name]

    path = broken_copy(tmp_path, DEFAULT_FLOW, drop)
    compiled = load_checked(path)
    assert survey.survey_states(compiled.flow) == frozenset()
    result = step(compiled, None, "", NOW, StepContext(
        channel=Channel.SMS, opening=Opening("followup_intro", "fr")), Limits(Channel.SMS))
    assert result.session.state == compiled.flow.first_start
