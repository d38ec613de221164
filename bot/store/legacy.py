"""Moving a deployment's data from the pre-sharding `{cases}` keys into the case shards.

Before the cases were spread over 16 shards, everything of the cases domain
sat under one hash tag, `hl:{cases}:…`: case records (with the answers in the
record and a `seq` field), one audit stream per case plus a global one, the
journals, the indexes, the idempotency keys, the outbox stream, deliveries,
and the operators. `helpline cases migrate` moves all of it into today's keys
(`bot.store.keys`), one atomic script a case, so a run that stops half-way
(or two runs at once) loses and duplicates nothing: a case is either still
under the old keys or wholly under the new ones, and a second run finds
nothing left to move. Only on one Redis (the old layout never ran on a
Cluster): each script touches the old tag and the new shard's, two slots.

Each case's record gets today's fields (the answers beside it, `tri` in place
of `seq`), its indexes, its phone's set and its day's count in its shard; its
old audit events are appended to the shard's stream (new stream ids, their
`at` keeps the time they happened) and listed in its trail; its journal is
copied as it is. Idempotency keys go to their phone's shard, with their TTL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot.cases.model import Priority
from bot.store import keys
from bot.store.audit import NO_CASE, NO_CASE_SHARD
from bot.store.case_scripts import AUDIT_FUNCTION
from bot.store.cases import encode_answers, text_of, time_part, triage_score
from bot.store.deliveries import reference_of
from bot.store.scripts import Script, is_cluster

OLD = f"{keys.PREFIX}:{{cases}}"
SCAN_COUNT = 500
# Sequence bits of the triage score (as CREATE_CASE draws them: seq mod 64, times 16).
SEQ_BITS, SEQ_STEP = 64, 16
MAX_ATTEMPTS = 20


def old_key(name: str) -> str:
    return f"{OLD}:{name}"


MOVE_CASE = Script(
    "move_legacy_case",
    AUDIT_FUNCTION + """
-- One Redis only: the old keys ({cases}) and the case's shard are two slots.
-- KEYS[1] old record   KEYS[2] old case audit stream   KEYS[3] old notes
-- KEYS[4] new record   KEYS[5] new answers   KEYS[6] new trail   KEYS[7] new notes
-- KEYS[8] shard's audit stream   KEYS[9] shard's cases-per-day hash
-- KEYS[10] shard's cases-by-phone set of the case's phone (unused when ARGV[7] is '0')
-- KEYS[11..] the shard's indexes the case belongs to
-- ARGV[1] SHA-1 of the old record as read (HGETALL joined by NUL)   ARGV[2] triage score
-- ARGV[3] new record fields (JSON object)   ARGV[4] answers ('' for none)
-- ARGV[5] reference   ARGV[6] creation day   ARGV[7] '1' when the phone's set gets it
-- Returns 1 when moved now, 0 when there is nothing to move, -1 when a case of that
-- reference exists under the new keys already (both are left as they are), -2 when the
-- old record changed since it was read.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local flat = redis.call('HGETALL', KEYS[1])
if redis.sha1hex(table.concat(flat, '\\0')) ~= ARGV[1] then return -2 end
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local fields = {}
for name, value in pairs(cjson.decode(ARGV[3])) do
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
redis.call('HSET', KEYS[4], unpack(fields))
if ARGV[4] ~= '' then redis.call('SET', KEYS[5], ARGV[4]) end
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
  local event = {}
  for i = 1, #entry[2], 2 do event[entry[2][i]] = entry[2][i + 1] end
  audit(KEYS[8], KEYS[6], ARGV[5], event['actor'] or '', event['action'] or '',
    event['at'] or '', event['detail'] or '{}')
end
for _, note in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
  redis.call('RPUSH', KEYS[7], note)
end
for i = 11, #KEYS do redis.call('ZADD', KEYS[i], ARGV[2], ARGV[5]) end
if ARGV[7] == '1' then redis.call('SADD', KEYS[10], ARGV[5]) end
redis.call('HINCRBY', KEYS[9], ARGV[6], 1)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
""",
)

MOVE_KEY = Script(
    "move_legacy_key",
    """
-- KEYS[1] old key   KEYS[2] new key (another slot: one Redis only)
-- Copies the value and its TTL unless the new key exists, then deletes the old key.
-- Returns 1 when the old key was there, else 0.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('COPY', KEYS[1], KEYS[2]) end
redis.call('DEL', KEYS[1])
return 1
""",
)

MOVE_ENTRY = Script(
    "move_legacy_entry",
    """
-- KEYS[1] old stream   KEYS[2] new stream (another slot: one Redis only)
-- ARGV[1] the entry's id in the old stream
-- Appends the entry's fields to the new stream and deletes it from the old one.
-- Returns 1 when moved, 0 when it was gone already.
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(found[1][2]))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
""",
)

MOVE_OPERATOR = Script(
    "move_legacy_operator",
    """
-- KEYS[1] old operators hash   KEYS[2] new operators hash
-- ARGV[1] name
-- Moves one operator unless the new hash has one of that name. Returns 1 when moved.
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
redis.call('HSETNX', KEYS[2], ARGV[1], record)
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
""",
)


@dataclass
class Migration:
    """What one run moved (a second run moves nothing)."""

    cases: int = 0
    conflicts: list[str] = field(default_factory=list)
    """References that exist under both layouts: left where they are."""
    idempotency_keys: int = 0
    outbox_events: int = 0
    audit_events: int = 0
    """Events about no single case (exports, searches)."""
    deliveries: int = 0
    operators: int = 0
    cleaned: int = 0
    """Old keys deleted at the end (indexes, counters, streams whose entries moved)."""

    @property
    def complete(self) -> bool:
        return not self.conflicts


async def legacy_present(redis: Redis) -> bool:
    """Whether any of the pre-sharding layout's keys are left (one command)."""
    if is_cluster(redis):
        return False
    return bool(await redis.exists(old_key("seq"), old_key("idx:all"), old_key("operators"),
                                   old_key("audit"), old_key("outbox")))


async def _scan(redis: Redis, pattern: str) -> AsyncIterator[str]:
    async for key in redis.scan_iter(match=pattern, count=SCAN_COUNT):
        yield text_of(key)


def _digest(flat: list[str]) -> str:
    return hashlib.sha1("\0".join(flat).encode()).hexdigest()  # noqa: S324 (a checksum)


def _move_call(reference: str, record: dict[str, str],
               digest: str) -> tuple[list[str], list[str | int]]:
    shard = keys.shard_of(reference)
    created_at = datetime.fromisoformat(record["created_at"])
    tri = time_part(created_at, shard) + int(record.get("seq") or 0) % SEQ_BITS * SEQ_STEP
    fields = {name: value for name, value in record.items() if name not in ("seq", "answers")}
    fields["tri"] = str(tri)
    answers = record.get("answers")
    pseudonym = record.get("phone_pseudonym", "")
    indexes = [keys.cases_triage(shard), keys.cases_by_status(shard, record["status"]),
               keys.cases_by_kind(shard, record["kind"]),
               keys.cases_by_priority(shard, record["priority"])]
    if record.get("assignee"):
        indexes.append(keys.cases_by_assignee(shard, record["assignee"]))
    if record.get("escalated") == "1":
        indexes.append(keys.cases_escalated(shard))
    return (
        [old_key(f"case:{reference}"), old_key(f"audit:{reference}"),
         old_key(f"notes:{reference}"), keys.case(reference), keys.case_answers(reference),
         keys.case_trail(reference), keys.case_notes(reference), keys.shard_audit(shard),
         keys.cases_per_day(shard), keys.cases_by_phone(shard, pseudonym), *indexes],
        [digest, triage_score(Priority(record["priority"]), tri),
         json.dumps(fields, ensure_ascii=False),
         encode_answers(json.loads(answers)) if answers else "", reference,
         created_at.date().isoformat(), "1" if pseudonym else "0"],
    )


async def _move_case(redis: Redis, reference: str) -> int:
    for _ in range(MAX_ATTEMPTS):
        raw = await redis.hgetall(old_key(f"case:{reference}"))
        if not raw:
            return 0
        flat = [text_of(part) for pair in raw.items() for part in pair]
        record = dict(zip(flat[::2], flat[1::2], strict=True))
        outcome = int(await MOVE_CASE.run(redis, *_move_call(reference, record,
                                                              _digest(flat))))
        if outcome != -2:
            return outcome
    raise RuntimeError(f"the old record of case {reference} kept changing")


async def _move_cases(redis: Redis, done: Migration, max_cases: int | None) -> None:
    prefix = old_key("case:")
    async for key in _scan(redis, prefix + "*"):
        if max_cases is not None and done.cases >= max_cases:
            return
        reference = key[len(prefix):]
        outcome = await _move_case(redis, reference)
        if outcome == 1:
            done.cases += 1
        elif outcome == -1 and reference not in done.conflicts:
            done.conflicts.append(reference)


async def _move_idempotency_keys(redis: Redis, done: Migration) -> None:
    prefix = old_key("idem:")
    async for key in _scan(redis, prefix + "*"):
        reference = text_of(await redis.get(key) or "")
        pseudonym = text_of(await redis.hget(keys.case(reference), "phone_pseudonym") or "") \
            if reference else ""
        # A phone's creations look their keys up in its own shard (keys.shard_of_phone).
        shard = keys.shard_of_phone(pseudonym) if pseudonym else (
            keys.shard_of(reference) if reference else 0)
        done.idempotency_keys += int(await MOVE_KEY.run(
            redis, [key, keys.case_idempotency(shard, key[len(prefix):])], []))


async def _move_stream(redis: Redis, old: str, target: Any) -> int:
    """Move every entry of an old stream whose new stream `target(fields)` names."""
    moved = 0
    start = "-"
    while True:
        entries = await redis.xrange(old, min=start, max="+", count=SCAN_COUNT)
        if not entries:
            return moved
        for entry_id, raw in entries:
            fields = {text_of(k): text_of(v) for k, v in (raw or {}).items()}
            new = target(fields)
            if new is not None:
                moved += int(await MOVE_ENTRY.run(redis, [old, new], [text_of(entry_id)]))
        start = f"({text_of(entries[-1][0])}"


def _outbox_of(fields: dict[str, str]) -> str | None:
    reference = fields.get("reference", "")
    return keys.cases_outbox(keys.shard_of(reference)) if reference else None


def _no_case_audit(fields: dict[str, str]) -> str | None:
    # Case events are moved with their case (from its own stream); the rest stay here.
    return keys.shard_audit(NO_CASE_SHARD) if fields.get("reference", "") == NO_CASE else None


async def _move_deliveries(redis: Redis, done: Migration) -> None:
    prefix = old_key("delivery:")
    async for key in _scan(redis, prefix + "*"):
        delivery_id = key[len(prefix):]
        try:
            reference = reference_of(delivery_id)
        except ValueError:
            continue
        done.deliveries += int(await MOVE_KEY.run(
            redis, [key, keys.delivery(delivery_id, reference)], []))
    prefix = old_key("delivery_sid:")
    async for key in _scan(redis, prefix + "*"):
        await MOVE_KEY.run(redis, [key, keys.delivery_by_sid(key[len(prefix):])], [])


async def _move_operators(redis: Redis, done: Migration) -> None:
    for name in await redis.hkeys(old_key("operators")):
        done.operators += int(await MOVE_OPERATOR.run(
            redis, [old_key("operators"), keys.operators()], [text_of(name)]))
    prefix = old_key("operator_token:")
    async for key in _scan(redis, prefix + "*"):
        await MOVE_KEY.run(redis, [key, keys.operator_token(key[len(prefix):])], [])


async def _clean(redis: Redis, done: Migration) -> None:
    """Once no case is left under the old keys: drop what only described them."""
    async for _ in _scan(redis, old_key("case:*")):
        return
    leftovers = [key async for key in _scan(redis, f"{OLD}:*")]
    for start in range(0, len(leftovers), SCAN_COUNT):
        done.cleaned += int(await redis.delete(*leftovers[start : start + SCAN_COUNT]))


async def migrate(redis: Redis, *, max_cases: int | None = None) -> Migration:
    """Move everything under the old `{cases}` keys into today's layout; idempotent.

    `max_cases` stops after moving that many cases (a large deployment may move in
    slices; the next run goes on). The old indexes and counters are deleted only when
    no case is left under the old keys.
    """
    if is_cluster(redis):
        raise ValueError("the pre-sharding layout never ran on a Redis Cluster: "
                         "nothing to migrate there")
    done = Migration()
    await _move_operators(redis, done)
    await _move_cases(redis, done, max_cases)
    if max_cases is not None and done.cases >= max_cases:
        return done
    await _move_idempotency_keys(redis, done)
    await _move_deliveries(redis, done)
    done.outbox_events = await _move_stream(redis, old_key("outbox"), _outbox_of)
    done.audit_events = await _move_stream(redis, old_key("audit"), _no_case_audit)
    if done.complete:
        await _clean(redis, done)
    return done
