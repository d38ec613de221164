"""What the programme report reads (docs/spec.md §11), kept ready in Redis.

Each case has a short fact per shard (`keys.report_facts`: month created, kind, status,
vulnerability flags, nationality and country as typed), rewritten whole by a script
(`lua/report_facts.lua`) whenever the audit shows the case created, changed or erased
(the worker reads the audit each second, `bot.cases.followups.sync_from_audit`). A
report then reads 16 fact hashes and 16 follow-up hashes in one round trip, and
counts in Python: no walk over the cases. The rules (which answers, which kinds,
suppression) are the caller's (`bot.cases.report`), passed in as arguments.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from redis.asyncio import Redis

from bot.store import keys
from bot.store.cases import text_of
from bot.store.followups import CALLED_AGAIN
from bot.store.scripts import Script, batch

REFRESH_FACTS = Script.load("report_facts")
SEPARATOR = "|"

Counts = dict[tuple[str, str, str], float]
"""(family, month, name) → value (see `bot.cases.report.Counts`)."""


async def refresh_facts(redis: Redis, references: Iterable[str], *, yes: str,
                        vulnerabilities: Sequence[str], nationality: str,
                        country: str) -> None:
    """Rewrite the facts of these cases from their records, as they are now."""
    by_shard: dict[int, set[str]] = defaultdict(set)
    for reference in references:
        by_shard[keys.shard_of(reference)].add(reference)
    if not by_shard:
        return
    async with batch(redis) as pipe:
        for shard, found in sorted(by_shard.items()):
            REFRESH_FACTS.queue(pipe, [keys.report_facts(shard)], [
                keys.case_prefix(shard), keys.answers_prefix(shard), yes,
                " ".join(vulnerabilities), nationality, country, *sorted(found)])
        await pipe.execute()


class _Months:
    """YYYY-MM (UTC) of epoch seconds, remembered per day."""

    def __init__(self) -> None:
        self._of_day: dict[int, str] = {}

    def __call__(self, epoch: int) -> str:
        day = epoch // 86400
        month = self._of_day.get(day)
        if month is None:
            moment = time.gmtime(epoch)
            month = self._of_day[day] = f"{moment.tm_year:04d}-{moment.tm_mon:02d}"
        return month


async def tally(redis: Redis, *, request_kind: str, vulnerabilities: Sequence[str],
                alone: Sequence[str]) -> Counts:
    """Every case counted by month: o (requests created, by status now), v (by
    vulnerability), n and c (nationality and country as typed), k (the `alone` kinds
    created), d (returns, by tenths of days from the request), s (check-ins sent),
    a (answered), m and M (sum of scores per dimension, per mille, and how many)."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.hvals(keys.report_facts(shard))
            pipe.hvals(keys.followups(shard))
        found = await pipe.execute()
    counts: defaultdict[tuple[str, str, str], float] = defaultdict(float)
    # Many cases share one fact (month, kind, status, flags, names): counted as one string.
    facts = Counter(text_of(fact) for values in found[::2] for fact in values)
    wanted = frozenset(alone)
    for fact, many in facts.items():
        month, kind, status, flags, nationality, country = fact.split(SEPARATOR, 5)
        if kind == request_kind:
            counts[("o", month, status)] += many
            for name, flag in zip(vulnerabilities, flags, strict=False):
                if flag == "1":
                    counts[("v", month, name)] += many
            counts[("n", month, nationality)] += many
            counts[("c", month, country)] += many
        elif kind in wanted:
            counts[("k", month, kind)] += many
    month_of = _Months()
    for values in found[1::2]:
        for record in values:
            _count_record(counts, month_of, text_of(record))
    return dict(counts)


HAS_SENT = (",t,", ",a,", ",x,", ",c,")
"""A check-in in one of these statuses may have been sent (the status is the only field
that can read so): the others are not looked at."""


def _count_record(counts: defaultdict[tuple[str, str, str], float], month_of: _Months,
                  record: str) -> None:
    head, _, rest = record.partition(";")
    returned, _, tenths = head.partition(",")
    if returned and tenths:
        counts[("d", month_of(int(returned)), tenths)] += 1
    if not any(status in rest for status in HAS_SENT):
        return
    for entry in rest.split(";"):
        # id,origin,channel,status,due,sent,answered,economic,social,psychosocial,flags
        fields = entry.split(",")
        # a call again (origin d) is the same check-in: sent once, answered if it was
        if len(fields) > 5 and fields[5] and fields[1] != CALLED_AGAIN:
            counts[("s", month_of(int(fields[5])), "")] += 1
        if len(fields) > 6 and fields[6]:
            month = month_of(int(fields[6]))
            counts[("a", month, "")] += 1
            scores = [(name, int(value)) for name, value in zip(
                ("economic", "social", "psychosocial"), fields[7:10], strict=False) if value]
            for name, value in scores:
                counts[("m", month, name)] += value
                counts[("M", month, name)] += 1
            if scores:
                counts[("m", month, "composite")] += sum(v for _, v in scores) / len(scores)
                counts[("M", month, "composite")] += 1
