"""Case records in Redis: creation, the migrant's own reads and writes, erasure.

Writers come in pairs so a conversation can queue them on its own pipeline
(with its session save, one round trip): `queue_*` adds one command to the
pipeline and `*_result` interprets that command's raw reply.

No rules here: which statuses a migrant may leave, which fields are personal,
what is audited under which action are the case service's
(`bot.cases.service`), passed in as arguments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from bot import privacy
from bot.cases.model import (
    Case,
    CaseKind,
    CaseLookup,
    CaseStatus,
    Consent,
    NewCase,
    Priority,
)
from bot.cases.references import draw_reference
from bot.errors import CaseNotFound, ReferenceTaken
from bot.settings import get_settings
from bot.store import keys
from bot.store.phone_state import PHONE
from bot.store.scripts import Script, batch

__all__ = [
    "CaseLookup",
    "NewCase",
    "case_lookup",
    "case_lookup_result",
    "create_case",
    "create_case_result",
    "draw_candidates",
    "newest_case_of_phone",
    "outbox_event",
    "own_status_result",
    "queue_case_lookup",
    "queue_create_case",
    "queue_own_case_status",
    "read_case",
]

CANDIDATES_PER_CREATION = 4
IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600

LOOKUP_CASE = Script.load("lookup_case")
NEWEST_CASE_OF_PHONE = Script.load("newest_case_of_phone")
OWN_CASE_STATUS = Script.load("own_case_status")


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC, the one format of every stored time."""
    return moment.astimezone(UTC).isoformat()


def _key(pii_key: bytes | None) -> bytes:
    return pii_key if pii_key is not None else privacy.pii_key(get_settings())


def text_of(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


# --- creation ---------------------------------------------------------------


# Triage score: priority rank * RANK_SPAN + creation ms * 1024 + sequence bits + shard.
RANK_SPAN = 2**51
TIME_UNIT = 1024


def time_part(created_at: datetime, shard: int) -> int:
    """The triage score's time part without its sequence bits (the script adds them)."""
    return int(created_at.timestamp() * 1000) * TIME_UNIT + shard


def triage_score(priority: Priority, tri: int) -> int:
    return priority.rank * RANK_SPAN + tri


def draw_candidates(shard: int, count: int = CANDIDATES_PER_CREATION) -> list[str]:
    """Fresh random references, all in `shard` (a creation script runs in one shard)."""
    return [draw_reference(residue=shard, modulus=keys.CASE_SHARDS) for _ in range(count)]


def queue_create_case(
    pipe: Any,
    *,
    new_case: NewCase,
    candidates: Sequence[str],
    idempotency_key: str | None,
    pii_key: bytes | None = None,
) -> None:
    """Queue the atomic creation of a case under the first free candidate reference.

    Every candidate must be in one shard. A used `idempotency_key` yields the
    reference it created before, and nothing new.
    """
    script_keys, args = create_case_call(new_case=new_case, candidates=candidates,
                                         idempotency_key=idempotency_key, pii_key=pii_key)
    PHONE.queue(pipe, script_keys, ["create", *args])


def create_case_call(
    *,
    new_case: NewCase,
    candidates: Sequence[str],
    idempotency_key: str | None,
    pii_key: bytes | None = None,
) -> tuple[list[str], list[str | int]]:
    """The creation's keys and arguments (CASE in `phone.lua`'s header): its 'create'
    operation's, and what the conversation's step appends to its own to create the case
    in the same call (`bot.store.sessions.run_creating`)."""
    if not candidates:
        raise ValueError("at least one candidate reference is needed")
    shard = keys.shard_of(candidates[0])
    if any(keys.shard_of(reference) != shard for reference in candidates):
        raise ValueError("candidate references must share one shard")
    priority = new_case.priority
    pseudonym = privacy.pseudonym(new_case.phone, _key(pii_key))
    fields = {
        "kind": str(new_case.kind),
        "status": str(CaseStatus.NEW),
        "priority": str(priority),
        "escalated": "0",
        "escalation_level": "0",
        "assignee": "",
        "phone": new_case.phone,
        "phone_pseudonym": pseudonym,
        "language": new_case.language,
        "channel": new_case.channel,
        "consent_given_at": iso(new_case.consent_given_at) if new_case.consent_given_at else "",
        "consent_text_version": new_case.consent_text_version or "",
        "created_at": iso(new_case.created_at),
        "updated_at": iso(new_case.created_at),
    }
    if new_case.related:
        fields["related"] = new_case.related
    detail = json.dumps(
        {"kind": str(new_case.kind), "priority": str(priority), "channel": new_case.channel}
    )
    script_keys = [
        keys.case_idempotency(shard, idempotency_key or ""),
        keys.case_sequence(shard),
        keys.cases_triage(shard),
        keys.cases_by_status(shard, CaseStatus.NEW),
        keys.cases_by_kind(shard, new_case.kind),
        keys.cases_by_priority(shard, priority),
        keys.cases_by_phone(shard, pseudonym),
        keys.cases_per_day(shard),
        keys.shard_audit(shard),
        keys.cases_outbox(shard),
    ]
    for reference in candidates:
        script_keys += [keys.case(reference), keys.case_answers(reference),
                        keys.case_trail(reference)]
    return (
        script_keys,
        [
            IDEMPOTENCY_TTL_SECONDS if idempotency_key else 0,
            priority.rank,
            new_case.created_at.astimezone(UTC).date().isoformat(),
            iso(new_case.created_at),
            json.dumps(fields, ensure_ascii=False),
            detail,
            json.dumps(outbox_event(new_case)),
            time_part(new_case.created_at, shard),
            encode_answers(new_case.answers),
            *candidates,
        ],
    )


def encode_answers(answers: Mapping[str, str]) -> str:
    """The answers as stored: compact JSON, keys sorted."""
    return json.dumps(answers, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def outbox_event(new_case: NewCase) -> list[str]:
    """The outbox event of a new case (after its reference), as alternating names and values.

    No personal data: the worker reads the phone and the answers from the case
    record when it acts, so an erasure in between leaves nothing to send.
    """
    return [
        "kind", str(new_case.kind),
        "priority", str(new_case.priority),
        "channel", new_case.channel,
        "language", new_case.language,
        "created_at", iso(new_case.created_at),
    ]  # fmt: skip


def queue_reference_of(pipe: Any, *, idempotency_key: str, pseudonym: str) -> None:
    """Queue the read of the reference a creation made under `idempotency_key` (or None).

    The phone's creations run in its own shard (`keys.shard_of_phone`).
    """
    shard = keys.shard_of_phone(pseudonym)
    pipe.execute_command("GET", keys.case_idempotency(shard, idempotency_key))


def create_case_result(raw: Any) -> str:
    """The reference from the creation script's reply; ReferenceTaken if none was free."""
    outcome = [text_of(part) for part in raw]
    if outcome[0] == "taken":
        raise ReferenceTaken("every candidate reference is already used")
    return outcome[1]


async def create_case(
    redis: Redis,
    *,
    new_case: NewCase,
    candidates: Sequence[str] | None = None,
    idempotency_key: str | None = None,
    pii_key: bytes | None = None,
) -> str:
    """Create a case (durable once this returns) and return its reference."""
    if candidates is None:
        pseudonym = privacy.pseudonym(new_case.phone, _key(pii_key))
        drawn: Sequence[str] = draw_candidates(keys.shard_of_phone(pseudonym))
    else:
        drawn = candidates
    async with batch(redis) as pipe:
        queue_create_case(
            pipe,
            new_case=new_case,
            candidates=drawn,
            idempotency_key=idempotency_key,
            pii_key=pii_key,
        )
        (raw,) = await pipe.execute()
    return create_case_result(raw)


# --- the migrant's own reads and writes -------------------------------------------


def queue_case_lookup(pipe: Any, *, reference: str, phone: str) -> None:
    """Queue the migrant's "follow my request" read: kind, status and whether it is theirs."""
    LOOKUP_CASE.queue(pipe, [keys.case(reference)], [phone])


async def case_lookup(redis: Any, *, reference: str, phone: str) -> CaseLookup | None:
    """The migrant's "follow my request" read: kind, status and whether it is theirs."""
    return case_lookup_result(await LOOKUP_CASE.run(redis, [keys.case(reference)], [phone]))


async def case_exists(redis: Any, reference: str) -> bool:
    """Whether the case is stored (its record; nothing of it is read)."""
    return bool(await redis.exists(keys.case(reference)))


async def newest_case_of_phone(redis: Any, *, pseudonym: str, kind: CaseKind,
                               statuses: Sequence[CaseStatus]) -> tuple[str, CaseStatus] | None:
    """The phone's newest case of `kind` in one of `statuses`: its reference and status."""
    shard = keys.shard_of_phone(pseudonym)
    raw = await NEWEST_CASE_OF_PHONE.run(
        redis, [keys.cases_by_phone(shard, pseudonym)],
        [keys.case_prefix(shard), str(kind), *(str(status) for status in statuses)])
    if not raw:
        return None
    reference, status = (text_of(part) for part in raw)
    return reference, CaseStatus(status)


def case_lookup_result(raw: Any) -> CaseLookup | None:
    if not raw:
        return None
    reference, kind, status, is_callers = (text_of(part) for part in raw)
    return CaseLookup(
        reference=reference,
        kind=CaseKind(kind),
        status=CaseStatus(status),
        is_callers=is_callers == "1",
    )


def queue_own_case_status(
    pipe: Any, *, reference: str, phone: str, now: datetime, kind: CaseKind,
    sources: Sequence[CaseStatus], target: CaseStatus, actor: str, action: str,
) -> None:
    """Queue a status change of the caller's own case of `kind`, from one of `sources`."""
    shard = keys.shard_of(reference)
    OWN_CASE_STATUS.queue(
        pipe,
        [
            keys.case(reference),
            keys.shard_audit(shard),
            keys.case_trail(reference),
            keys.cases_by_status(shard, target),
            *(keys.cases_by_status(shard, status) for status in sources),
        ],
        [phone, iso(now), str(kind), str(target), actor, action,
         *(str(status) for status in sources)],
    )


def own_status_result(raw: Any) -> bool:
    return int(raw) == 1


# --- a phone's cases -------------------------------------------------------------


async def references_of_phone(redis: Redis, pseudonym: str) -> list[str]:
    """The references of every case of one phone (by its pseudonym), sorted.

    A phone's cases are in its own shard, unless made with chosen references:
    every shard's set is read, in one round trip (rare reads: erasure, search).
    """
    async with redis.pipeline(transaction=False) as sets:
        for shard in keys.SHARDS:
            sets.smembers(keys.cases_by_phone(shard, pseudonym))
        found = await sets.execute()
    return sorted(text_of(ref) for members in found for ref in members)


# --- reads ---------------------------------------------------------------------


def case_from_record(record: Mapping[str, str]) -> Case:
    """A Case from its stored hash (decoded strings)."""
    consent = None
    if record.get("consent_given_at"):
        consent = Consent(
            given_at=datetime.fromisoformat(record["consent_given_at"]),
            text_version=record.get("consent_text_version", ""),
        )
    erased_at = record.get("erased_at")
    return Case(
        reference=record["reference"],
        kind=CaseKind(record["kind"]),
        status=CaseStatus(record["status"]),
        priority=Priority(record["priority"]),
        escalated=record.get("escalated") == "1",
        escalation_level=int(record.get("escalation_level") or 0),
        assignee=record.get("assignee") or None,
        phone=record.get("phone") or None,
        language=record["language"],
        channel=record["channel"],
        answers=json.loads(record.get("answers") or "{}"),
        consent=consent,
        created_at=datetime.fromisoformat(record["created_at"]),
        updated_at=datetime.fromisoformat(record["updated_at"]),
        erased_at=datetime.fromisoformat(erased_at) if erased_at else None,
        related=record.get("related") or None,
    )


async def read_case(redis: Redis, reference: str) -> Case:
    """One case with its personal fields (the caller audits the read); CaseNotFound if none."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.case(reference))
        pipe.get(keys.case_answers(reference))
        record, answers = await pipe.execute()
    if not record:
        raise CaseNotFound(reference)
    found = {text_of(k): text_of(v) for k, v in record.items()}
    found["answers"] = text_of(answers) if answers else ""
    return case_from_record(found)
