"""Outreach's pure rules: quiet hours, a broadcast's texts, the consent's promise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.outreach.broadcasts import (
    ALERTS_A_MONTH,
    Broadcast,
    BroadcastStatus,
    Draft,
    Problem,
    check_draft,
    over_the_promise,
    parse_recipient_tag,
    recipient_tag,
    start_status,
    status_letter,
)
from bot.outreach.quiet import QuietHours
from bot.settings import Settings
from tests.factories import default_flow

FLOW = default_flow().flow
NIGHT = QuietHours.parse("21-07", "Africa/Bamako")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("hour", "ends"), [
    (20, None), (21, "2026-03-03T07:00"), (23, "2026-03-03T07:00"), (3, "2026-03-02T07:00"),
    (7, None), (12, None),
])
def test_quiet_hours_wrap_past_midnight(hour: int, ends: str | None) -> None:
    assert NIGHT is not None
    found = NIGHT.ends_after(datetime(2026, 3, 2, hour, 30, tzinfo=UTC))
    assert (found.isoformat()[:16] if found else None) == ends


def test_quiet_hours_in_another_time_zone_and_within_a_day() -> None:
    lunch = QuietHours.parse("12:30-14:00", "Europe/Paris")  # UTC+1 in March
    assert lunch is not None
    assert lunch.ends_after(datetime(2026, 3, 2, 11, 45, tzinfo=UTC)) == datetime(
        2026, 3, 2, 13, 0, tzinfo=UTC)
    assert lunch.ends_after(datetime(2026, 3, 2, 13, 0, tzinfo=UTC)) is None


# Any moment a clock can give (year 1 or 9999 cannot be moved into a time zone at all).
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.just(UTC)))
def test_quiet_hours_always_end_within_a_day(moment: datetime) -> None:
    assert NIGHT is not None
    ends = NIGHT.ends_after(moment)
    if ends is not None:
        assert moment < ends <= moment + timedelta(hours=10)
        assert NIGHT.ends_after(ends) is None


@pytest.mark.parametrize("text", ["25-07", "21", "21-21", "9pm-7am"])
def test_unreadable_quiet_hours_are_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(ValueError, match="HELPLINE_QUIET_HOURS"):
        Settings(quiet_hours=text)


def test_an_empty_setting_means_no_quiet_hours() -> None:
    assert Settings(quiet_hours="").quiet() is None
    assert start_status(urgent=False, quiet_ends=None) is BroadcastStatus.SENDING


def test_a_draft_is_checked_per_targeted_language() -> None:
    checked = check_draft(FLOW, texts={"fr": " Bonjour ", "bm": "I ni ce"}, countries=["NE"],
                          languages=["fr", "bm"])
    assert isinstance(checked, Draft)
    assert checked.texts == {"fr": "Bonjour", "bm": "I ni ce"}
    assert checked.segments == {"fr": 1, "bm": 1}
    problems = check_draft(FLOW, texts={"fr": "x"}, countries=[], languages=[])
    assert isinstance(problems, list)
    assert [p.loc for p in problems] == [("body", "text", "en"), ("body", "text", "bm")]
    assert all(isinstance(p, Problem) and p.kind == "missing_text" for p in problems)


def broadcast(number: int, *, countries: tuple[str, ...] = (), urgent: bool = False,
              days_ago: int = 1, languages: tuple[str, ...] = ()) -> Broadcast:
    return Broadcast(id=str(number), status=BroadcastStatus.DONE, texts={}, countries=countries,
                     languages=languages, urgent=urgent, recipients=1, segments={},
                     created_by="operator:a", created_at=NOW,
                     approved_at=NOW - timedelta(days=days_ago))


def test_the_promise_counts_approved_non_urgent_alerts_reaching_a_country() -> None:
    recent = [broadcast(n, countries=("NE",)) for n in range(ALERTS_A_MONTH - 1)]
    recent += [broadcast(90, urgent=True), broadcast(91, days_ago=31),
               broadcast(92, countries=("NE",), languages=("en",))]
    assert over_the_promise(broadcast(100, countries=("NE",), languages=("fr",)), recent,
                            NOW) is None
    everyone = broadcast(101)
    assert "NE" in (over_the_promise(everyone, [*recent, broadcast(93)], NOW) or "")
    assert over_the_promise(broadcast(102, urgent=True), [*recent, broadcast(93)], NOW) is None


@given(st.text(max_size=30))
def test_a_callback_tag_reads_back_or_is_refused(tag: str) -> None:
    parsed = parse_recipient_tag(tag)
    if parsed is not None:
        assert recipient_tag(*parsed) == tag


def test_status_letters() -> None:
    assert [status_letter(s, "") for s in ("delivered", "read", "failed", "undelivered",
                                           "sent", "queued")] == ["d", "d", "f", "f", None, None]
    assert status_letter("failed", "63016") == "x"
