"""The pre-sharding data layout, written as the code before 3847e1f wrote it.

Everything under `hl:{cases}`. The Lua scripts are the old code's, verbatim from
commit 8e22d15 (`bot/store/case_scripts.py`); the writers around them follow
the old `bot/store/cases.py`, `audit.py`, `case_updates.py` (MULTI/EXEC),
`operators.py` and `deliveries.py`. Used to prove `helpline cases migrate`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from bot import privacy
from bot.cases.model import CaseKind, CaseStatus, JournalEntry, JournalKind, NewCase, Priority

PREFIX = "hl"
PII_KEY = privacy.DEV_PII_KEY
RANK_SPAN = 10**12
IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600
DELIVERY_TTL_SECONDS = 30 * 24 * 3600
PERSONAL_FIELDS = ("phone", "phone_pseudonym", "answers")


def _cases() -> str:
    return f"{PREFIX}:{{cases}}"


def case(reference: str) -> str:
    return f"{_cases()}:case:{reference}"


def case_idempotency(key: str) -> str:
    return f"{_cases()}:idem:{key}"


def case_sequence() -> str:
    return f"{_cases()}:seq"


def case_audit(reference: str) -> str:
    return f"{_cases()}:audit:{reference}"


def cases_audit() -> str:
    return f"{_cases()}:audit"


def case_notes(reference: str) -> str:
    return f"{_cases()}:notes:{reference}"


def cases_triage() -> str:
    return f"{_cases()}:idx:all"


def cases_by_status(status: str) -> str:
    return f"{_cases()}:idx:status:{status}"


def cases_by_kind(kind: str) -> str:
    return f"{_cases()}:idx:kind:{kind}"


def cases_by_priority(priority: str) -> str:
    return f"{_cases()}:idx:priority:{priority}"


def cases_by_assignee(assignee: str) -> str:
    return f"{_cases()}:idx:assignee:{assignee}"


def cases_escalated() -> str:
    return f"{_cases()}:idx:escalated"


def cases_by_phone(pseudonym: str) -> str:
    return f"{_cases()}:phone:{pseudonym}"


def cases_per_day() -> str:
    return f"{_cases()}:stats:day"


def operators() -> str:
    return f"{_cases()}:operators"


def operator_token(token_hash: str) -> str:
    return f"{_cases()}:operator_token:{token_hash}"


def cases_outbox() -> str:
    return f"{_cases()}:outbox"


def delivery(delivery_id: str) -> str:
    return f"{_cases()}:delivery:{delivery_id}"


def delivery_by_sid(message_sid: str) -> str:
    return f"{_cases()}:delivery_sid:{message_sid}"


def cases_ended() -> str:
    return f"{_cases()}:idx:ended"

CREATE_CASE = """
-- KEYS[1] idempotency key          KEYS[2] case sequence counter
-- KEYS[3] triage index (all)       KEYS[4] status index    KEYS[5] kind index
-- KEYS[6] priority index           KEYS[7] cases-by-phone set
-- KEYS[8] cases-per-day hash       KEYS[9] global audit stream
-- KEYS[10] outbox stream (the worker's events: confirmation SMS, on-call)
-- KEYS[11..] per candidate, two keys: case record, case audit stream
-- ARGV[1] idempotency TTL in seconds (0: no idempotency key)
-- ARGV[2] priority rank   ARGV[3] creation day   ARGV[4] created_at (ISO 8601)
-- ARGV[5] record fields, a JSON object of strings
-- ARGV[6] audit detail (JSON)
-- ARGV[7] outbox event fields, a JSON array of alternating names and values
-- ARGV[8..] candidate references, in the order of their KEYS pairs
-- Returns {'existing', ref} | {'created', ref} | {'taken'}
-- The outbox event is added in the same script as the case, so a process that
-- dies right after creating a case loses nothing the worker has to do.
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {'existing', existing} end
end
local first_candidate = 8
local chosen = nil
for i = first_candidate, #ARGV do
  if redis.call('EXISTS', KEYS[11 + (i - first_candidate) * 2]) == 0 then
    chosen = i
    break
  end
end
if not chosen then return {'taken'} end
local ref = ARGV[chosen]
local case_key = KEYS[11 + (chosen - first_candidate) * 2]
local audit_key = KEYS[12 + (chosen - first_candidate) * 2]
local seq = redis.call('INCR', KEYS[2])
local score = tonumber(ARGV[2]) * 1000000000000 + seq
local flat = {'reference', ref, 'seq', tostring(seq)}
for field, value in pairs(cjson.decode(ARGV[5])) do
  flat[#flat + 1] = field
  flat[#flat + 1] = value
end
redis.call('HSET', case_key, unpack(flat))
for i = 3, 6 do redis.call('ZADD', KEYS[i], score, ref) end
redis.call('SADD', KEYS[7], ref)
redis.call('HINCRBY', KEYS[8], ARGV[3], 1)
redis.call('XADD', audit_key, '*', 'actor', 'migrant', 'action', 'created',
  'at', ARGV[4], 'detail', ARGV[6])
redis.call('XADD', KEYS[9], '*', 'reference', ref, 'actor', 'migrant',
  'action', 'created', 'at', ARGV[4], 'detail', ARGV[6])
redis.call('XADD', KEYS[10], '*', 'reference', ref, unpack(cjson.decode(ARGV[7])))
if ttl > 0 then redis.call('SET', KEYS[1], ref, 'EX', ttl) end
return {'created', ref}
"""

WITHDRAW_BY_MIGRANT = """
-- KEYS[1] case record   KEYS[2] case audit stream   KEYS[3] global audit stream
-- KEYS[4] status index of 'withdrawn'
-- KEYS[5..] status indexes of the statuses one may withdraw from
-- ARGV[1] the caller's phone   ARGV[2] now (ISO 8601)   ARGV[3] kind that may be withdrawn
-- ARGV[4] 'withdrawn'   ARGV[5..] the statuses one may withdraw from, as KEYS[5..]
-- Returns 1 when the case was withdrawn now, else 0
local v = redis.call('HMGET', KEYS[1], 'reference', 'kind', 'status', 'phone')
if not v[1] or v[2] ~= ARGV[3] or not v[4] or v[4] ~= ARGV[1] then return 0 end
local source_index = nil
for i = 5, #ARGV do
  if ARGV[i] == v[3] then source_index = KEYS[i] end
end
if not source_index then return 0 end
local score = redis.call('ZSCORE', source_index, v[1])
redis.call('ZREM', source_index, v[1])
redis.call('ZADD', KEYS[4], score, v[1])
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'updated_at', ARGV[2])
local detail = cjson.encode({from = v[3], to = ARGV[4]})
redis.call('XADD', KEYS[2], '*', 'actor', 'migrant', 'action', 'status_changed',
  'at', ARGV[2], 'detail', detail)
redis.call('XADD', KEYS[3], '*', 'reference', v[1], 'actor', 'migrant',
  'action', 'status_changed', 'at', ARGV[2], 'detail', detail)
return 1
"""

ERASE_CASE = """
-- KEYS[1] case record   KEYS[2] case audit stream   KEYS[3] global audit stream
-- KEYS[4] case notes    KEYS[5] cases-by-phone set of the case's phone
-- ARGV[1] actor   ARGV[2] now (ISO 8601)   ARGV[3..] personal fields to delete
-- Returns 1 when the case was erased now, 0 when absent or erased already
local v = redis.call('HMGET', KEYS[1], 'reference', 'erased_at')
if not v[1] or (v[2] and v[2] ~= '') then return 0 end
for i = 3, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('HSET', KEYS[1], 'erased_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('DEL', KEYS[4])
redis.call('SREM', KEYS[5], v[1])
redis.call('XADD', KEYS[2], '*', 'actor', ARGV[1], 'action', 'erased', 'at', ARGV[2],
  'detail', '{}')
redis.call('XADD', KEYS[3], '*', 'reference', v[1], 'actor', ARGV[1], 'action', 'erased',
  'at', ARGV[2], 'detail', '{}')
return 1
"""

READ_CASE = """
-- KEYS[1] case record   KEYS[2] case journal (notes)
-- KEYS[3] case audit stream   KEYS[4] global audit stream
-- ARGV[1] reader (actor)   ARGV[2] now (ISO 8601)   ARGV[3] the case's reference
-- Returns false when there is no such case, else {record (flat), journal entries}.
-- Reading personal data is audited in the same step as the read itself.
local record = redis.call('HGETALL', KEYS[1])
if #record == 0 then return false end
redis.call('XADD', KEYS[3], '*', 'actor', ARGV[1], 'action', 'read', 'at', ARGV[2],
  'detail', '{}')
redis.call('XADD', KEYS[4], '*', 'reference', ARGV[3], 'actor', ARGV[1], 'action', 'read',
  'at', ARGV[2], 'detail', '{}')
return {record, redis.call('LRANGE', KEYS[2], 0, -1)}
"""


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


async def _eval(redis: Redis, source: str, keys: list[str], args: list[Any]) -> Any:
    return await redis.eval(source, len(keys), *keys, *args)


async def create_case(redis: Redis, *, new_case: NewCase, reference: str,
                      idempotency_key: str | None = None) -> str:
    """The old `create_case` (one candidate reference)."""
    priority = new_case.priority
    pseudonym = privacy.pseudonym(new_case.phone, PII_KEY)
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
        "answers": json.dumps(new_case.answers, ensure_ascii=False, sort_keys=True),
        "consent_given_at": iso(new_case.consent_given_at) if new_case.consent_given_at else "",
        "consent_text_version": new_case.consent_text_version or "",
        "created_at": iso(new_case.created_at),
        "updated_at": iso(new_case.created_at),
    }
    detail = json.dumps(
        {"kind": str(new_case.kind), "priority": str(priority), "channel": new_case.channel}
    )
    outbox = ["kind", str(new_case.kind), "priority", str(new_case.priority),
              "channel", new_case.channel, "language", new_case.language,
              "created_at", iso(new_case.created_at)]
    raw = await _eval(redis, CREATE_CASE, [
        case_idempotency(idempotency_key or ""), case_sequence(), cases_triage(),
        cases_by_status(CaseStatus.NEW), cases_by_kind(new_case.kind),
        cases_by_priority(priority), cases_by_phone(pseudonym), cases_per_day(),
        cases_audit(), cases_outbox(), case(reference), case_audit(reference),
    ], [
        IDEMPOTENCY_TTL_SECONDS if idempotency_key else 0, priority.rank,
        new_case.created_at.astimezone(UTC).date().isoformat(), iso(new_case.created_at),
        json.dumps(fields, ensure_ascii=False), detail, json.dumps(outbox), reference,
    ])
    assert raw[0] in ("created", b"created"), raw
    return reference


async def withdraw_by_migrant(redis: Redis, *, reference: str, phone: str,
                              now: datetime) -> bool:
    sources = [CaseStatus.NEW, CaseStatus.CONTACTED, CaseStatus.IN_PROGRESS,
               CaseStatus.REFERRED, CaseStatus.RETURN_ARRANGED]
    raw = await _eval(redis, WITHDRAW_BY_MIGRANT, [
        case(reference), case_audit(reference), cases_audit(),
        cases_by_status(CaseStatus.WITHDRAWN), *(cases_by_status(s) for s in sources),
    ], [phone, iso(now), str(CaseKind.RETURN_REQUEST), str(CaseStatus.WITHDRAWN),
        *map(str, sources)])
    return int(raw) == 1


async def erase_case(redis: Redis, *, reference: str, actor: str, now: datetime) -> bool:
    pseudonym = await redis.hget(case(reference), "phone_pseudonym") or ""
    raw = await _eval(redis, ERASE_CASE, [
        case(reference), case_audit(reference), cases_audit(), case_notes(reference),
        cases_by_phone(pseudonym if isinstance(pseudonym, str) else pseudonym.decode()),
    ], [actor, iso(now), *PERSONAL_FIELDS])
    return int(raw) == 1


async def read_case(redis: Redis, *, reference: str, actor: str, now: datetime) -> None:
    await _eval(redis, READ_CASE, [case(reference), case_notes(reference),
                                   case_audit(reference), cases_audit()],
                [actor, iso(now), reference])


def queue_audit(pipe: Any, *, reference: str, actor: str, action: str, at: datetime,
                detail: dict[str, object]) -> None:
    """The old `audit.queue_audit`: the case's stream and the global one."""
    fields = {"actor": actor, "action": action, "at": iso(at),
              "detail": json.dumps(detail, sort_keys=True)}
    if reference:
        pipe.xadd(case_audit(reference), fields)
    pipe.xadd(cases_audit(), {"reference": reference, **fields})


async def record_audit(redis: Redis, **event: Any) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        queue_audit(pipe, **event)
        await pipe.execute()


async def _record(redis: Redis, reference: str) -> dict[str, str]:
    raw = await redis.hgetall(case(reference))
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes)
                                                          else v) for k, v in raw.items()}


def _indexes(record: dict[str, str]) -> set[str]:
    found = {cases_triage(), cases_by_status(record["status"]), cases_by_kind(record["kind"]),
             cases_by_priority(record["priority"])}
    if record.get("assignee"):
        found.add(cases_by_assignee(record["assignee"]))
    if record.get("escalated") == "1":
        found.add(cases_escalated())
    return found


async def update_case(redis: Redis, *, reference: str, actor: str, now: datetime,
                      changes: dict[str, str], events: list[tuple[str, dict[str, object]]],
                      journal: JournalEntry | None = None) -> None:
    """The old `case_updates._transact` write: record, reindex, journal, audit (MULTI)."""
    before = await _record(redis, reference)
    after = {**before, **changes, "updated_at": iso(now)}
    score = Priority(after["priority"]).rank * RANK_SPAN + int(before["seq"])
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(case(reference), mapping={k: after[k] for k in (
            "status", "priority", "assignee", "escalated", "escalation_level", "updated_at")})
        for stale in _indexes(before) - _indexes(after):
            pipe.zrem(stale, reference)
        for index in _indexes(after):
            pipe.zadd(index, {reference: score})
        if journal is not None:
            pipe.rpush(case_notes(reference), journal.model_dump_json())
        for action, detail in events:
            queue_audit(pipe, reference=reference, actor=actor, action=action, at=now,
                        detail=detail)
        await pipe.execute()


def journal_entry(kind: JournalKind, *, author: str, at: datetime, text: str) -> JournalEntry:
    return JournalEntry(id=secrets.token_hex(6), kind=kind, author=author, at=at, text=text)


async def add_operator(redis: Redis, *, name: str, role: str, now: datetime) -> str:
    """The old `operators.add_operator` (MULTI): the record and the token's name key."""
    token = secrets.token_urlsafe(32)
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    record = json.dumps({"name": name, "role": role, "created_at": iso(now),
                         "token_hash": token_hash, "revoked_at": None}, sort_keys=True)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(operators(), name, record)
        pipe.set(operator_token(token_hash), name)
        await pipe.execute()
    return token


async def finish_delivery(redis: Redis, *, delivery_id: str, reference: str, sid: str,
                          phone_pseudonym: str, now: datetime) -> None:
    """The old `deliveries.finish` of a sent SMS: the record, its SID, the audit (MULTI)."""
    record = {"state": "sent", "finished_at": iso(now), "sid": sid,
              "phone_pseudonym": phone_pseudonym}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(delivery(delivery_id), mapping=record)
        pipe.expire(delivery(delivery_id), DELIVERY_TTL_SECONDS)
        pipe.set(delivery_by_sid(sid), json.dumps({"delivery": delivery_id,
                                                   "reference": reference}),
                 ex=DELIVERY_TTL_SECONDS)
        queue_audit(pipe, reference=reference, actor="worker", action="sms_sent", at=now,
                    detail={"delivery": delivery_id, "sid": sid})
        await pipe.execute()
