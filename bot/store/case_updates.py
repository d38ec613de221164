"""How a case is changed: optimistic writes of a record, its indexes, journal and audit.

`transact` reads the record, runs a plan (the case service's rules, in
`bot.cases.service`: it knows no keys) that fills a `Write`, then one script
(UPDATE_CASE, in the case's shard) checks that the record is still the one
read (its SHA-1) and writes the record, its indexes, its journal and its audit
events together; a concurrent write to the record makes it read and decide
again. No MULTI/WATCH: the same code runs on one server, Sentinel and Cluster.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from redis.asyncio import Redis

from bot.cases.model import (
    Case,
    JournalEntry,
)
from bot.errors import CaseNotFound
from bot.store import keys
from bot.store.cases import (
    case_from_record,
    iso,
    text_of,
    triage_score,
)
from bot.store.scripts import Script

UPDATE_CASE = Script.load("update_case")
NO = "no"
MAX_ATTEMPTS = 50

T = TypeVar("T")


def index_keys(case: Case) -> set[str]:
    """Every index a case in this state belongs to."""
    shard = keys.shard_of(case.reference)
    found = {
        keys.cases_triage(shard),
        keys.cases_by_status(shard, case.status),
        keys.cases_by_kind(shard, case.kind),
        keys.cases_by_priority(shard, case.priority),
    }
    if case.assignee:
        found.add(keys.cases_by_assignee(shard, case.assignee))
    if case.escalated:
        found.add(keys.cases_escalated(shard))
    return found


@dataclass(frozen=True)
class Loaded:
    case: Case
    tri: int
    """The time part of the case's triage score (bot.store.cases.triage_score)."""
    phone_pseudonym: str
    answers_sms_safe: str


@dataclass
class Write:
    """What a plan decided to write; nothing at all when it stays empty."""

    after: Case | None = None
    """The record's new state (its indexes follow it)."""
    journal: JournalEntry | None = None
    updated_at: datetime | None = None
    events: list[tuple[str, str, datetime, dict[str, object]]] = field(default_factory=list)
    """(actor, action, at, detail) of each audit event."""

    def audit(self, *, actor: str, action: str, at: datetime,
              detail: dict[str, object]) -> None:
        self.events.append((actor, action, at, detail))


Plan = Callable[[Loaded, Write], T]


def _digest(flat: list[str]) -> str:
    return hashlib.sha1("\0".join(flat).encode()).hexdigest()  # noqa: S324 (a checksum)


async def transact(redis: Redis, reference: str, plan: Plan[T]) -> T:
    """Read the record, run `plan(loaded, write)`, write it if the record did not change."""
    key = keys.case(reference)
    for _ in range(MAX_ATTEMPTS):
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.get(keys.case_answers(reference))
            raw, answers = await pipe.execute()
        if not raw:
            raise CaseNotFound(reference)
        flat = [text_of(part) for pair in raw.items() for part in pair]
        record = dict(zip(flat[::2], flat[1::2], strict=True))
        loaded = Loaded(
            case=case_from_record({**record,
                                   "answers": text_of(answers) if answers else ""}),
            tri=int(record.get("tri") or 0),
            phone_pseudonym=record.get("phone_pseudonym", ""),
            answers_sms_safe=json.loads(text_of(answers) if answers else "{}").get(
                "sms_safe", ""),
        )
        write = Write()
        result = plan(loaded, write)
        if write.after is None and write.journal is None and not write.events:
            return result
        outcome = int(await UPDATE_CASE.run(redis, *_update_call(loaded, write, _digest(flat))))
        if outcome == 1:
            return result
        if outcome == -1:
            raise CaseNotFound(reference)
    raise RuntimeError(f"case {reference} kept changing under {MAX_ATTEMPTS} writes")


def _update_call(loaded: Loaded, write: Write, digest: str) -> tuple[list[str],
                                                                     list[str | int]]:
    before = loaded.case
    reference = before.reference
    after = write.after or before
    old, new = index_keys(before), index_keys(after) if write.after else set()
    left = sorted(old - new) if write.after else []
    joined = sorted(new)
    fields: dict[str, str] = {}
    if write.after is not None:
        fields = {
            "status": str(after.status),
            "priority": str(after.priority),
            "assignee": after.assignee or "",
            "escalated": "1" if after.escalated else "0",
            "escalation_level": str(after.escalation_level),
            "updated_at": iso(after.updated_at),
        }
    elif write.updated_at is not None:
        fields = {"updated_at": iso(write.updated_at)}
    shard = keys.shard_of(reference)
    return (
        [keys.case(reference), keys.case_notes(reference), keys.shard_audit(shard),
         keys.case_trail(reference), *left, *joined],
        [
            digest,
            len(left),
            triage_score(after.priority, loaded.tri),
            json.dumps(fields),
            write.journal.model_dump_json() if write.journal else "",
            reference,
            json.dumps([[actor, action, iso(at), json.dumps(detail, sort_keys=True,
                                                            default=str)]
                        for actor, action, at, detail in write.events]),
        ],
    )
