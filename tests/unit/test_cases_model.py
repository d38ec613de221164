from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from bot.cases.lifecycle import allowed_next, next_status, sources_of
from bot.cases.model import CaseKind, CaseStatus, NewCase, Priority, derive_priority
from bot.errors import IllegalTransition

NO = dict.fromkeys(
    ("under_18", "medical", "pregnant", "trafficking_or_violence", "disability"), "no"
)


@pytest.mark.parametrize(
    ("kind", "yes", "expected"),
    [
        (CaseKind.EMERGENCY, None, Priority.URGENT),
        (CaseKind.RETURN_REQUEST, None, Priority.NORMAL),
        (CaseKind.CALLBACK, None, Priority.NORMAL),
        (CaseKind.RETURN_REQUEST, "under_18", Priority.URGENT),
        (CaseKind.RETURN_REQUEST, "medical", Priority.URGENT),
        (CaseKind.RETURN_REQUEST, "trafficking_or_violence", Priority.URGENT),
        (CaseKind.RETURN_REQUEST, "pregnant", Priority.HIGH),
        (CaseKind.RETURN_REQUEST, "disability", Priority.HIGH),
    ],
)
def test_priority_follows_the_spec(kind: CaseKind, yes: str | None, expected: Priority) -> None:
    answers = dict(NO)
    if yes:
        answers[yes] = "yes"
    assert derive_priority(kind, answers) is expected


def test_urgent_answer_wins_over_high_answer() -> None:
    answers = {**NO, "pregnant": "yes", "medical": "yes"}
    assert derive_priority(CaseKind.RETURN_REQUEST, answers) is Priority.URGENT


def test_no_answers_is_normal() -> None:
    assert derive_priority(CaseKind.CALLBACK, {}) is Priority.NORMAL


def test_new_case_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone"):
        NewCase(
            kind=CaseKind.CALLBACK,
            phone="+22370000000",
            language="fr",
            channel="sms",
            created_at=datetime(2025, 1, 1),
        )
    NewCase(
        kind=CaseKind.CALLBACK,
        phone="+22370000000",
        language="fr",
        channel="sms",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


def test_the_main_road_of_a_return() -> None:
    road = [
        CaseStatus.NEW,
        CaseStatus.CONTACTED,
        CaseStatus.IN_PROGRESS,
        CaseStatus.RETURN_ARRANGED,
        CaseStatus.RETURNED,
        CaseStatus.CLOSED,
    ]
    for current, target in itertools.pairwise(road):
        assert next_status(current, target) is target


def test_referred_is_the_other_branch() -> None:
    assert next_status(CaseStatus.IN_PROGRESS, CaseStatus.REFERRED) is CaseStatus.REFERRED


@pytest.mark.parametrize("status", list(CaseStatus))
def test_closed_from_anywhere_but_closed(status: CaseStatus) -> None:
    assert (CaseStatus.CLOSED in allowed_next(status)) is (status is not CaseStatus.CLOSED)


def test_withdrawn_only_before_returned() -> None:
    assert sources_of(CaseStatus.WITHDRAWN) == [
        CaseStatus.NEW,
        CaseStatus.CONTACTED,
        CaseStatus.IN_PROGRESS,
        CaseStatus.REFERRED,
        CaseStatus.RETURN_ARRANGED,
    ]


def test_illegal_change_names_the_allowed_ones() -> None:
    with pytest.raises(IllegalTransition) as caught:
        next_status(CaseStatus.NEW, CaseStatus.RETURNED)
    assert caught.value.allowed == ["contacted", "closed", "withdrawn"]


def test_no_skip_and_no_way_back() -> None:
    with pytest.raises(IllegalTransition):
        next_status(CaseStatus.CONTACTED, CaseStatus.NEW)
    with pytest.raises(IllegalTransition):
        next_status(CaseStatus.CLOSED, CaseStatus.CLOSED)
