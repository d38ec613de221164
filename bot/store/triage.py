"""Triage pages and exports over the case shards, in the triage order of docs/spec.md §7.

A page is one Lua call per case shard, all sent in one round trip (one
pipeline on one server; one per master, at once, on a Cluster). Each call
(`HEADS_OF_CASES`) walks its shard's smallest index that every match belongs
to, in triage order, from the cursor on, and returns the score and reference
of its first matches: a few more than the shard's even share of a page, the
fields of those few with them. The page is the k-way merge of the shards'
heads. Only when the merge needs more of a shard than that (its cases are
crowded at the head of the queue) does a second round trip walk those shards
up to a whole page, heads only, and a third read the rows the merge chose
beyond what came with the heads (`ROWS_OF_CASES`): three round trips at
most, one in the common case.

Scores are unique across shards (the shard number is in their low bits), so
one score says where every shard stands: a shard's walk that stopped (at its
share or at its budget) bounds what the merge may hand out (nothing beyond it
is known yet), and the next cursor is the score of the last case handed out,
or that bound.

An export walks every shard with a cursor of its own, a large batch a shard
at a time, so each row is read once (`walk_cases`).
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from bot.cases.model import CaseKind, CaseStatus, Priority
from bot.cases.references import REFERENCE_DIGITS
from bot.store import keys
from bot.store.cases import text_of
from bot.store.scripts import Script, batch

HEADS_OF_CASES = Script.load("heads_of_cases")
ROWS_OF_CASES = Script.load("rows_of_cases")

MAX_PAGE_SIZE = 100
# Cases one page call may examine before it answers with what it found so far;
# bounds the cost of a very selective filter (the next cursor continues the walk).
EXAMINE_BUDGET = 2000
# Cases an export reads from one shard a round trip.
EXPORT_CHUNK = 1000
# A shard's first walk returns this many times its even share of a page, plus SPARE.
SHARE_FACTOR = 2
SPARE = 2

# Record fields that carry no personal data: list items, export rows.
SUMMARY_FIELDS = (
    "reference",
    "kind",
    "status",
    "priority",
    "escalated",
    "escalation_level",
    "assignee",
    "language",
    "channel",
    "consent_text_version",
    "created_at",
    "updated_at",
    "erased_at",
)


@dataclass(frozen=True)
class CaseFilter:
    status: CaseStatus | None = None
    kind: CaseKind | None = None
    priority: Priority | None = None
    escalated: bool | None = None
    assignee: str | None = None
    reference_prefix: str = ""
    name_fragment: str = ""

    def indexes(self, shard: int) -> list[str]:
        found = [keys.cases_triage(shard)]
        if self.status is not None:
            found.append(keys.cases_by_status(shard, self.status))
        if self.kind is not None:
            found.append(keys.cases_by_kind(shard, self.kind))
        if self.priority is not None:
            found.append(keys.cases_by_priority(shard, self.priority))
        if self.escalated:
            found.append(keys.cases_escalated(shard))
        if self.assignee:
            found.append(keys.cases_by_assignee(shard, self.assignee))
        return found

    def record_fields(self) -> dict[str, str]:
        wanted: dict[str, str] = {}
        if self.status is not None:
            wanted["status"] = str(self.status)
        if self.kind is not None:
            wanted["kind"] = str(self.kind)
        if self.priority is not None:
            wanted["priority"] = str(self.priority)
        if self.escalated is not None:
            wanted["escalated"] = "1" if self.escalated else "0"
        if self.assignee:
            wanted["assignee"] = self.assignee
        return wanted


@dataclass(frozen=True)
class Page:
    items: list[dict[str, str]] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass
class ShardHeads:
    rows: list[tuple[int, str]] = field(default_factory=list)
    """(score, reference) of each match, in triage order."""
    frontier: float = math.inf
    """Every match of the shard up to this score is in `rows` (inf: the walk ended)."""
    cut: bool = False
    """The walk stopped because it had found what it was asked for (not at its budget)."""


def _texts(raw: Sequence[Any]) -> Sequence[str]:
    """A script's reply as strings (a client may decode replies already, or not)."""
    if raw and isinstance(raw[0], bytes):
        return [text_of(value) for value in raw]
    return raw


def parse_heads(raw: Sequence[object], *, asked: int, with_fields: int,
                fields: Sequence[str], known: dict[str, dict[str, str]]) -> ShardHeads:
    """A shard's heads from HEADS_OF_CASES; the rows that came with them go to `known`."""
    values = _texts(raw)
    heads = ShardHeads(frontier=float(values[0]) if values[0] else math.inf)
    position = 1
    while position < len(values):
        score, reference = int(values[position]), values[position + 1]
        position += 2
        heads.rows.append((score, reference))
        if len(heads.rows) <= with_fields and fields:
            known[reference] = dict(zip(fields, values[position : position + len(fields)],
                                        strict=True))
            position += len(fields)
    heads.cut = len(heads.rows) >= asked and heads.frontier < math.inf
    return heads


def merge_heads(heads: Sequence[ShardHeads], limit: int) -> tuple[list[str], str | None]:
    """The first `limit` matches over every shard, in triage order, and the next cursor."""
    bound = min((shard.frontier for shard in heads), default=math.inf)
    known = heapq.merge(*(shard.rows for shard in heads), key=lambda row: row[0])
    ready = [row for row in known if row[0] <= bound]
    taken = ready[:limit]
    if len(taken) == limit and (len(ready) > limit or bound < math.inf):
        next_cursor: str | None = str(taken[-1][0])
    elif len(taken) < limit and bound < math.inf:
        next_cursor = str(int(bound))
    else:
        next_cursor = None
    return [reference for _, reference in taken], next_cursor


def short_of(heads: Sequence[ShardHeads], limit: int) -> list[int]:
    """The shards (by position) whose walk must go on before the page is known.

    Those that stopped at their share below the point the page needs: the
    `limit`-th known match, or a walk stopped at its budget (the page ends
    there anyway).
    """
    scores = sorted(score for shard in heads for score, _ in shard.rows)
    needed = float(scores[limit - 1]) if len(scores) >= limit else math.inf
    needed = min([needed, *(shard.frontier for shard in heads if not shard.cut)])
    return [position for position, shard in enumerate(heads)
            if shard.cut and shard.frontier < needed]


def heads_call(shard: int, indexes: Sequence[str], *, cursor: str, asked: int, budget: int,
               fields: Sequence[str], with_fields: int, wanted: str = "{}",
               reference_prefix: str = "", name_fragment: str = "",
               ) -> tuple[list[str], list[str | int]]:
    """HEADS_OF_CASES's keys and arguments: one shard's walk from `cursor`."""
    return (
        list(indexes),
        [keys.case_prefix(shard), cursor, asked, budget, wanted, reference_prefix,
         name_fragment.lower(), keys.answers_prefix(shard), with_fields,
         " ".join(fields) if with_fields else ""],
    )


async def _walk_heads(redis: Redis, case_filter: CaseFilter, shards: Sequence[int],
                      cursors: Sequence[str], *, asked: int, budget: int,
                      fields: Sequence[str], with_fields: int,
                      known: dict[str, dict[str, str]]) -> list[ShardHeads]:
    wanted = json.dumps(case_filter.record_fields())
    async with batch(redis) as pipe:
        for shard, cursor in zip(shards, cursors, strict=True):
            HEADS_OF_CASES.queue(pipe, *heads_call(
                shard, case_filter.indexes(shard), cursor=cursor, asked=asked, budget=budget,
                fields=fields, with_fields=with_fields, wanted=wanted,
                reference_prefix=case_filter.reference_prefix,
                name_fragment=case_filter.name_fragment))
        raw = await pipe.execute()
    return [parse_heads(found, asked=asked, with_fields=with_fields, fields=fields, known=known)
            for found in raw]


async def page_of_cases(
    redis: Redis,
    *,
    case_filter: CaseFilter,
    limit: int,
    cursor: str | None,
    fields: Sequence[str] = SUMMARY_FIELDS,
    budget: int = EXAMINE_BUDGET,
) -> Page:
    """One page in triage order (urgent, high, normal; oldest first), from `cursor` on.

    A page may hold fewer than `limit` items while `next_cursor` is set: the walk
    stopped at its budget; following the cursor continues it.
    """
    if len(case_filter.reference_prefix) == REFERENCE_DIGITS and not case_filter.name_fragment:
        return Page() if cursor else await _exact_reference(redis, case_filter, fields)
    budget = max(budget, limit)
    share = min(limit, SHARE_FACTOR * math.ceil(limit / keys.CASE_SHARDS) + SPARE)
    known: dict[str, dict[str, str]] = {}
    shards = list(keys.SHARDS)
    heads = await _walk_heads(redis, case_filter, shards, [cursor or ""] * len(shards),
                              asked=share, budget=budget, fields=fields, with_fields=share,
                              known=known)
    behind = short_of(heads, limit) if share < limit else []
    if behind:
        more = await _walk_heads(
            redis, case_filter, [shards[p] for p in behind],
            [str(int(heads[p].frontier)) for p in behind], asked=limit, budget=budget,
            fields=fields, with_fields=0, known=known)
        for position, extra in zip(behind, more, strict=True):
            heads[position].rows += extra.rows
            heads[position].frontier = extra.frontier
    references, next_cursor = merge_heads(heads, limit)
    missing = [reference for reference in references if reference not in known]
    if missing:
        known.update(await _rows_by_reference(redis, missing, fields))
    items = [known[reference] for reference in references if reference in known]
    return Page(items=items, next_cursor=next_cursor)


async def rows_of_cases(
    redis: Redis, references: Sequence[str], fields: Sequence[str] = SUMMARY_FIELDS
) -> list[dict[str, str]]:
    """The fields of these cases, in their order (one script per shard, one round trip);
    a case that no longer exists is left out."""
    found = await _rows_by_reference(redis, references, fields) if references else {}
    return [found[reference] for reference in references if reference in found]


async def _rows_by_reference(redis: Redis, references: Sequence[str],
                             fields: Sequence[str]) -> dict[str, dict[str, str]]:
    by_shard: dict[int, list[str]] = {}
    for reference in references:
        by_shard.setdefault(keys.shard_of(reference), []).append(reference)
    async with batch(redis) as pipe:
        for shard, chosen in by_shard.items():
            ROWS_OF_CASES.queue(
                pipe,
                [keys.cases_triage(shard)],
                [keys.case_prefix(shard), keys.answers_prefix(shard), len(fields), *fields,
                 *chosen],
            )
        raw = await pipe.execute()
    width = len(fields) + 1
    found: dict[str, dict[str, str]] = {}
    for chosen, values in zip(by_shard.values(), raw, strict=True):
        for position, reference in enumerate(chosen):
            row = values[position * width : (position + 1) * width]
            if int(row[0]):
                found[reference] = dict(zip(fields, map(text_of, row[1:]), strict=True))
    return found


async def case_summary(
    redis: Redis, reference: str, fields: Sequence[str] = SUMMARY_FIELDS
) -> dict[str, str] | None:
    """One case's fields (no audit needed: `answers` only to say why its priority), or None."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.case(reference), list(fields))
        pipe.get(keys.case_answers(reference))
        values, answers = await pipe.execute()
    if values[0] is None:
        return None
    values = [answers if name == "answers" else value
              for name, value in zip(fields, values, strict=True)]
    return {
        name: "" if value is None else text_of(value)
        for name, value in zip(fields, values, strict=True)
    }


async def _exact_reference(redis: Redis, case_filter: CaseFilter, fields: Sequence[str]) -> Page:
    found = await case_summary(
        redis, case_filter.reference_prefix, [*fields, *case_filter.record_fields()]
    )
    if found is None or any(found[k] != v for k, v in case_filter.record_fields().items()):
        return Page()
    return Page(items=[{name: found[name] for name in fields}])


@dataclass
class _ShardWalk:
    """One shard's part of an export: rows read ahead, and where its walk stands."""

    shard: int
    cursor: str = ""
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    taken: int = 0
    done: bool = False

    def ahead(self) -> int:
        return len(self.rows) - self.taken


async def _read_ahead(redis: Redis, walks: Sequence[_ShardWalk], fields: Sequence[str],
                      chunk: int) -> None:
    async with batch(redis) as pipe:
        for walk in walks:
            HEADS_OF_CASES.queue(pipe, *heads_call(
                walk.shard, [keys.cases_triage(walk.shard)], cursor=walk.cursor, asked=chunk,
                budget=chunk, fields=fields, with_fields=chunk))
        raw = await pipe.execute()
    width = len(fields) + 2
    for walk, found in zip(walks, raw, strict=True):
        values = _texts(found)
        walk.rows = walk.rows[walk.taken:] + [
            (int(values[start]), dict(zip(fields, values[start + 2 : start + width],
                                          strict=True)))
            for start in range(1, len(values), width)
        ]
        walk.taken = 0
        if walk.rows:
            walk.cursor = str(walk.rows[-1][0])
        walk.done = not values[0]


async def walk_cases(
    redis: Redis, *, fields: Sequence[str] = SUMMARY_FIELDS, chunk: int = EXPORT_CHUNK
) -> AsyncIterator[dict[str, str]]:
    """Every case in triage order (for exports).

    Each shard is walked with its own cursor, `chunk` cases at a time, and the
    shards' rows merged: every row is read once. A round trip reads ahead every
    shard that has less than half a chunk left, so the shards are topped up
    together.
    """
    walks = [_ShardWalk(shard) for shard in keys.SHARDS]
    await _read_ahead(redis, walks, fields, chunk)
    heap = [(walk.rows[0][0], walk.shard) for walk in walks if walk.rows]
    heapq.heapify(heap)
    while heap:
        _, shard = heap[0]
        walk = walks[shard]
        if walk.ahead() == 0:
            if walk.done:
                heapq.heappop(heap)
                continue
            await _read_ahead(redis, [w for w in walks if not w.done and w.ahead() < chunk // 2],
                              fields, chunk)
            if walk.ahead() == 0:
                heapq.heappop(heap)
                continue
            heapq.heapreplace(heap, (walk.rows[walk.taken][0], shard))
            continue
        score, row = walk.rows[walk.taken]
        walk.taken += 1
        yield row
        if walk.ahead():
            heapq.heapreplace(heap, (walk.rows[walk.taken][0], shard))
        elif walk.done:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (score, shard))
