"""The programme report's figures and its small-number suppression (docs/spec.md §11), pure: from
the counts the store tallies (bot/store/lua/report_tally.lua) to what is shown."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.cases import report

MARCH, APRIL = "2026-03", "2026-04"


def test_small_counts_are_null_and_zero_and_five_are_shown() -> None:
    assert [report.suppressed(n) for n in range(7)] == [0, None, None, None, None, 5, 6]


def test_a_month_of_requests_by_outcome_vulnerability_and_grouped_nationality() -> None:
    counts = {
        ("o", MARCH, "new"): 4, ("o", MARCH, "contacted"): 1, ("o", MARCH, "withdrawn"): 3,
        ("o", MARCH, "returned"): 1,
        ("v", MARCH, "under_18"): 3, ("v", MARCH, "medical"): 1,
        # five spellings of Mali; Guinée 3 times; a name typed by mistake once
        ("n", MARCH, "Mali"): 1, ("n", MARCH, " mali"): 1, ("n", MARCH, "MALI"): 1,
        ("n", MARCH, "Malí"): 1, ("n", MARCH, "mali "): 1, ("n", MARCH, "Guinée"): 3,
        ("n", MARCH, "Awa Traoré"): 1,
        ("c", MARCH, ""): 9,
        ("k", MARCH, "callback"): 6, ("k", MARCH, "emergency"): 1,
    }
    found = report.build(counts, start=MARCH, end=APRIL)
    march, april = found.months
    assert march.month == MARCH and april.month == APRIL
    requests = march.return_requests
    assert requests.created == 9
    assert requests.by_outcome == {"open": 5, "withdrawn": None, "returned": None, "closed": 0}
    assert requests.by_vulnerability == {"under_18": None, "medical": None, "pregnant": 0,
                                         "trafficking_or_violence": 0, "disability": 0}
    # Guinée (3) and the mistyped name (1) are folded into `other` (4: suppressed): no
    # rare answer is ever a label.
    assert requests.by_nationality == {"Mali": 5, "other": None}
    assert requests.by_current_country == {"unknown": 9}
    assert march.callbacks == 6 and march.emergencies is None
    assert april.return_requests.created == 0 and april.callbacks == 0
    assert found.total.return_requests.created == 9 and found.total.callbacks == 6
    assert "Awa" not in found.model_dump_json() and "Guin" not in found.model_dump_json()


def test_median_days_to_return_and_check_in_means_need_five_values() -> None:
    four = {("d", APRIL, "330"): 1, ("d", APRIL, "430"): 1, ("d", APRIL, "535"): 2,
            ("s", APRIL, ""): 4, ("a", APRIL, ""): 4,
            ("m", APRIL, "economic"): 4000, ("M", APRIL, "economic"): 4}
    figures = report.build(four, start=APRIL, end=APRIL).months[0]
    assert figures.median_days_to_return is None
    assert figures.checkins.sent is None and figures.checkins.answered is None
    assert figures.checkins.mean_scores["economic"] is None
    five = {**four, ("d", APRIL, "730"): 1, ("s", APRIL, ""): 5, ("a", APRIL, ""): 5,
            ("m", APRIL, "economic"): 4000, ("M", APRIL, "economic"): 5,
            ("m", APRIL, "social"): 2000, ("M", APRIL, "social"): 5,
            ("m", APRIL, "composite"): 3333.3333, ("M", APRIL, "composite"): 5}
    figures = report.build(five, start=APRIL, end=APRIL).months[0]
    assert figures.median_days_to_return == 53.5  # 33, 43, 53.5, 53.5, 73
    assert figures.checkins.sent == 5 and figures.checkins.answered == 5
    assert figures.checkins.mean_scores == {"economic": 0.8, "social": 0.4,
                                            "psychosocial": None, "composite": 0.667}


def test_an_even_count_has_the_mean_of_its_two_middle_values_as_median() -> None:
    assert report.weighted_median({10.0: 3, 20.0: 3}) == 15.0
    assert report.weighted_median({10.0: 2, 20.0: 1, 30.0: 3}) == 25.0
    assert report.weighted_median({10.0: 4}) is None


def test_the_total_sums_the_months_then_suppresses() -> None:
    counts = {("k", MARCH, "emergency"): 3, ("k", APRIL, "emergency"): 3}
    found = report.build(counts, start=MARCH, end=APRIL)
    assert [m.emergencies for m in found.months] == [None, None]
    assert found.total.emergencies == 6


def test_the_csv_leaves_a_suppressed_value_blank() -> None:
    found = report.build({("o", MARCH, "new"): 3}, start=MARCH, end=MARCH)
    rows = list(report.csv_rows(found))
    assert (MARCH, "return_requests_created", "", "") in rows
    assert ("total", "return_requests_by_outcome", "closed", "0") in rows


def test_months_between_crosses_years() -> None:
    assert report.months_between("2026-11", "2027-02") == [
        "2026-11", "2026-12", "2027-01", "2027-02"]
    assert report.months_between("2027-02", "2026-11") == []


@given(st.text(max_size=40))
def test_a_label_never_starts_like_a_spreadsheet_formula(text: str) -> None:
    shown = report.label(text)
    assert shown and shown[0] not in "=+-@'\t\r"
