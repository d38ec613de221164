"""The programme report (docs/spec.md §11): the monthly figures a programme gives its donors.

Pure: rows in, figures out. Per month: return requests created that month, by their
outcome now (open, withdrawn, returned, closed), by vulnerability, by nationality and
by current country; call-backs and emergencies created; the median days from a
request to its return (requests returned that month); check-ins sent and answered and
the mean score per dimension (check-ins answered that month). Then the same over the
whole period (`total`).

Nobody can be singled out: a count from 1 to `MIN_CELL` - 1 is None (blank in the CSV),
and so is a mean or a median of fewer than `MIN_CELL` values. Nationalities and
countries are typed by migrants: they are grouped once normalised (case, accents,
spaces), and a name given fewer than `MIN_CELL` times in a month is counted under
`other`, so that no rare (or mistyped, or personal) answer is shown as a label.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from bot.cases.model import CaseKind, CaseStatus
from bot.store import report_reads

MIN_CELL = 5
VULNERABILITIES = ("under_18", "medical", "pregnant", "trafficking_or_violence", "disability")
NATIONALITY, COUNTRY = "nationality", "country"
ANSWERS = (*VULNERABILITIES, NATIONALITY, COUNTRY)
"""The answers the report reads (nothing else of a case's answers)."""
YES = "yes"
OTHER, UNKNOWN = "other", "unknown"
DIMENSIONS = ("economic", "social", "psychosocial")
SCORED = (*DIMENSIONS, "composite")
ALONE = (CaseKind.CALLBACK, CaseKind.EMERGENCY)
"""Kinds counted on their own (created that month)."""
OUTCOMES = ("open", "withdrawn", "returned", "closed")
_OUTCOME = {CaseStatus.WITHDRAWN: "withdrawn", CaseStatus.RETURNED: "returned",
            CaseStatus.CLOSED: "closed"}
DAY_SECONDS = 86400
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


def suppressed(count: int) -> int | None:
    """A count as shown: None from 1 to MIN_CELL - 1."""
    return None if 0 < count < MIN_CELL else count


def label(text: str) -> str:
    """A typed country or nationality, grouped: "  mali", "MALI", "Malí" → "Mali"."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", text)
                    if not unicodedata.combining(ch))
    words = "".join(ch if ch.isalnum() or ch in " -'" else " " for ch in plain).split()
    # Never a leading - or ' (a spreadsheet could take the CSV cell for a formula).
    shown = " ".join(words).strip(" -'").title()
    return shown or UNKNOWN


def month_of(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m}"


def months_between(start: str, end: str) -> list[str]:
    """"2026-11", "2027-02" → ["2026-11", "2026-12", "2027-01", "2027-02"]."""
    year, month = int(start[:4]), int(start[5:7])
    last = (int(end[:4]), int(end[5:7]))
    found = []
    while (year, month) <= last:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


class ReturnRequests(BaseModel):
    created: int | None
    by_outcome: dict[str, int | None] = Field(
        description="Requests created in the period, by their status now: open (not yet "
        "returned), withdrawn, returned, closed")
    by_vulnerability: dict[str, int | None]
    by_nationality: dict[str, int | None] = Field(
        description=f"Normalised as typed; names given fewer than {MIN_CELL} times are "
        f"counted under `{OTHER}`; `{UNKNOWN}` when not given or erased")
    by_current_country: dict[str, int | None]


class CheckIns(BaseModel):
    sent: int | None
    answered: int | None
    mean_scores: dict[str, float | None] = Field(
        description="Of the check-ins answered in the period, per dimension (0 struggling, "
        "1 doing well) and their composite; null under "
        f"{MIN_CELL} answers")


class Figures(BaseModel):
    month: str = Field(description="YYYY-MM, or `total` for the whole period")
    return_requests: ReturnRequests
    callbacks: int | None
    emergencies: int | None
    median_days_to_return: float | None = Field(
        description="From the request to `returned`, for requests returned in the period; "
        f"null under {MIN_CELL} returns")
    checkins: CheckIns


class ProgrammeReport(BaseModel):
    start: str = Field(serialization_alias="from")
    end: str = Field(serialization_alias="to")
    min_cell: int = Field(default=MIN_CELL, description="Counts from 1 to min_cell - 1, and "
                          "means or medians of fewer than min_cell values, are null")
    months: list[Figures]
    total: Figures


Counts = Mapping[tuple[str, str, str], float]
"""(family, month, name) → value, as `bot.store.report_reads.tally` reads them: o (requests
created, by status), v (by vulnerability), n (nationality as typed), c (country as typed),
k (other kinds created), d (returns by tenths of days from the request), s (check-ins sent),
a (answered), m (sum of scores per dimension, per mille), M (how many were summed)."""
PER_MILLE = 1000


def _outcome(status: str) -> str:
    try:
        return _OUTCOME.get(CaseStatus(status), "open")
    except ValueError:
        return "open"


@lru_cache(maxsize=4096)
def _label(text: str) -> str:
    return label(text) if text else UNKNOWN


def _grouped(typed: Mapping[str, float]) -> dict[str, int | None]:
    counted: Counter[str] = Counter()
    for text, count in typed.items():
        counted[_label(text)] += int(count)
    shown: dict[str, int] = {}
    other = 0
    for name, count in counted.most_common():
        if count >= MIN_CELL or name in (UNKNOWN, OTHER):
            shown[name] = shown.get(name, 0) + count
        else:
            other += count
    if other:
        shown[OTHER] = shown.get(OTHER, 0) + other
    return {name: suppressed(count) for name, count in shown.items()}


def weighted_median(histogram: Mapping[float, float]) -> float | None:
    """The median of values given with how often each came (None when fewer than MIN_CELL)."""
    total = int(sum(histogram.values()))
    if total < MIN_CELL:
        return None
    ordered = sorted(histogram.items())
    middle = [(total - 1) // 2, total // 2]
    found: list[float] = []
    seen = 0
    for value, count in ordered:
        while len(found) < 2 and middle[len(found)] < seen + count:
            found.append(value)
        seen += int(count)
    return round((found[0] + found[1]) / 2, 1)


def _figures(name: str, parts: Sequence[Mapping[str, Mapping[str, float]]]) -> Figures:
    merged: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    for part in parts:
        for family, values in part.items():
            for key, value in values.items():
                merged[family][key] += value
    outcomes: Counter[str] = Counter()
    for status, count in merged["o"].items():
        outcomes[_outcome(status)] += int(count)
    created = sum(outcomes.values())
    sums, counts = merged["m"], merged["M"]
    means = {dimension: round(sums[dimension] / counts[dimension] / PER_MILLE, 3)
             if counts[dimension] >= MIN_CELL else None for dimension in SCORED}
    return Figures(
        month=name,
        return_requests=ReturnRequests(
            created=suppressed(created),
            by_outcome={outcome: suppressed(outcomes[outcome]) for outcome in OUTCOMES},
            by_vulnerability={key: suppressed(int(merged["v"][key])) for key in VULNERABILITIES},
            by_nationality=_grouped(merged["n"]),
            by_current_country=_grouped(merged["c"]),
        ),
        callbacks=suppressed(int(merged["k"][CaseKind.CALLBACK])),
        emergencies=suppressed(int(merged["k"][CaseKind.EMERGENCY])),
        median_days_to_return=weighted_median({float(tenths) / 10: count
                                               for tenths, count in merged["d"].items()}),
        checkins=CheckIns(sent=suppressed(int(merged["s"][""])),
                          answered=suppressed(int(merged["a"][""])), mean_scores=means),
    )


def build(counts: Counts, *, start: str, end: str) -> ProgrammeReport:
    """The report of the months from `start` to `end` (YYYY-MM, both included)."""
    months = months_between(start, end)
    by_month: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for (family, month, key), value in counts.items():
        by_month[month][family][key] = value
    empty: dict[str, dict[str, float]] = {}
    return ProgrammeReport(
        start=start, end=end,
        months=[_figures(month, [by_month.get(month, empty)]) for month in months],
        total=_figures("total", [by_month.get(month, empty) for month in months]))


async def refresh(redis: Redis, references: Iterable[str]) -> None:
    """Bring what the report counts of these cases up to date (the worker's audit sync)."""
    await report_reads.refresh_facts(redis, references, yes=YES,
                                     vulnerabilities=VULNERABILITIES, nationality=NATIONALITY,
                                     country=COUNTRY)


async def tally(redis: Redis) -> Counts:
    """Every case counted by month, from the facts the worker keeps."""
    return await report_reads.tally(redis, request_kind=str(CaseKind.RETURN_REQUEST),
                                    vulnerabilities=VULNERABILITIES,
                                    alone=[str(kind) for kind in ALONE])


def csv_rows(report: ProgrammeReport) -> Iterable[tuple[str, str, str, str]]:
    """(month, figure, group, value) for each figure; a suppressed value is ''."""

    def value(found: float | None) -> str:
        return "" if found is None else str(found)

    for figures in [*report.months, report.total]:
        month = figures.month
        requests = figures.return_requests
        yield month, "return_requests_created", "", value(requests.created)
        for family, groups in (("by_outcome", requests.by_outcome),
                               ("by_vulnerability", requests.by_vulnerability),
                               ("by_nationality", requests.by_nationality),
                               ("by_current_country", requests.by_current_country)):
            for group, count in groups.items():
                yield month, f"return_requests_{family}", group, value(count)
        yield month, "callbacks", "", value(figures.callbacks)
        yield month, "emergencies", "", value(figures.emergencies)
        yield month, "median_days_to_return", "", value(figures.median_days_to_return)
        yield month, "checkins_sent", "", value(figures.checkins.sent)
        yield month, "checkins_answered", "", value(figures.checkins.answered)
        for dimension, mean in figures.checkins.mean_scores.items():
            yield month, "checkins_mean_score", dimension, value(mean)
