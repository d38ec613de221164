"""Broadcasts in Redis: records under `{bc}`, audiences shard by shard (no rules here).

A broadcast's record, the list of broadcasts, the active set and their audit
stream share the `{bc}` tag (one slot: a few broadcasts a week). Its audience is
fixed at approval in each case shard, beside the subscriptions it is read from
(`keys.broadcast_audience`): a list of recipients to send to, the recipients
claimed by the sender holding the share's lease, each recipient's state and the
share's counts, each changed by one script of `lua/` in that shard's slot.
Which moves are allowed, who may approve and what is counted are
`bot.outreach.broadcasts`'s; the scripts get them as arguments or keep the
states their headers name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.cases.model import AuditEvent
from bot.outreach.broadcasts import Broadcast, BroadcastStatus, Draft, Outcome
from bot.store import keys, phone_state
from bot.store.audit import event_from_entry
from bot.store.cases import iso, text_of
from bot.store.scripts import Script, batch
from bot.types import Channel

CREATE = Script.load("broadcast_create")
MOVE = Script.load("broadcast_status")
SHARD_DONE = Script.load("broadcast_shard_done")
FIX_AUDIENCE = Script.load("fix_audience")
CLAIM = Script.load("claim_recipients")
OUTCOME = Script.load("recipient_outcome")
CLAIM_FALLBACK = Script.load("claim_fallback")
CLOSE_SHARE = Script.load("close_share")

FIX_CHUNK = 1000
"""Subscriptions read by one call of the fixing script (a few ms of Redis's time)."""
STATES_KEPT_SECONDS = 30 * 24 * 3600
"""A finished share's recipient states are kept this long, for Twilio's status reports."""
COUNTED = tuple(Outcome)


def _spaced(values: Iterable[str]) -> str:
    """' a b ' for the scripts' `string.find`; '' for none (all)."""
    chosen = list(values)
    return f" {' '.join(chosen)} " if chosen else ""


def _when(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


def _audience(broadcast_id: str, shard: int, part: str) -> str:
    return keys.broadcast_audience(broadcast_id, shard, part)


# --- records -----------------------------------------------------------------------


async def create(redis: Any, *, draft: Draft, urgent: bool, recipients: int, actor: str,
                 now: datetime) -> str:
    """Record a broadcast awaiting approval (audited `created`); its id."""
    broadcast_id = str(await redis.incr(keys.broadcast_sequence()))
    fields = {
        "status": str(BroadcastStatus.AWAITING_APPROVAL),
        "texts": json.dumps(dict(draft.texts), ensure_ascii=False, sort_keys=True),
        "countries": ",".join(draft.countries),
        "languages": ",".join(draft.languages),
        "urgent": "1" if urgent else "0",
        "recipients": str(recipients),
        "segments": json.dumps(dict(draft.segments), sort_keys=True),
        "created_by": actor,
        "created_at": iso(now),
    }
    detail = {"broadcast": broadcast_id, "urgent": urgent, "countries": list(draft.countries),
              "languages": list(draft.languages), "recipients": recipients}
    await CREATE.run(
        redis, [keys.broadcast(broadcast_id), keys.broadcasts_all(), keys.broadcasts_audit()],
        [broadcast_id, broadcast_id, actor, iso(now), json.dumps(detail, sort_keys=True),
         *(part for pair in fields.items() for part in pair)])
    return broadcast_id


def _broadcast(broadcast_id: str, raw: Mapping[Any, Any]) -> Broadcast:
    values = {text_of(k): text_of(v) for k, v in raw.items()}
    return Broadcast(
        id=broadcast_id,
        status=BroadcastStatus(values["status"]),
        texts=json.loads(values.get("texts") or "{}"),
        countries=tuple(c for c in values.get("countries", "").split(",") if c),
        languages=tuple(lang for lang in values.get("languages", "").split(",") if lang),
        urgent=values.get("urgent") == "1",
        recipients=int(values.get("recipients") or 0),
        segments=json.loads(values.get("segments") or "{}"),
        created_by=values.get("created_by", ""),
        created_at=datetime.fromisoformat(values["created_at"]),
        approved_by=values.get("approved_by") or None,
        approved_at=_when(values.get("approved_at")),
        cancelled_by=values.get("cancelled_by") or None,
        cancelled_at=_when(values.get("cancelled_at")),
        send_at=_when(values.get("send_at")),
        finished_at=_when(values.get("finished_at")),
    )


async def read(redis: Any, broadcast_id: str) -> Broadcast | None:
    if not broadcast_id.isdigit():
        return None
    raw = await redis.hgetall(keys.broadcast(broadcast_id))
    return _broadcast(broadcast_id, raw) if raw else None


async def newest(redis: Any, *, limit: int, before: str | None = None) -> list[Broadcast]:
    """Broadcasts, newest first; `before`: only those created before that id's."""
    top = "+inf" if before is None else f"({int(before)}"
    ids = [text_of(found) for found in await redis.zrevrangebyscore(
        keys.broadcasts_all(), top, "-inf", start=0, num=limit)]
    async with redis.pipeline(transaction=False) as pipe:
        for broadcast_id in ids:
            pipe.hgetall(keys.broadcast(broadcast_id))
        records = await pipe.execute()
    return [_broadcast(broadcast_id, raw) for broadcast_id, raw in zip(ids, records, strict=True)
            if raw]


async def counts(redis: Any, broadcast_ids: list[str]) -> list[dict[Outcome, int]]:
    """Each broadcast's recipients by outcome, summed over the shards (one round trip)."""
    async with redis.pipeline(transaction=False) as pipe:
        for broadcast_id in broadcast_ids:
            for shard in keys.SHARDS:
                pipe.hmget(_audience(broadcast_id, shard, "n"), *COUNTED)
        found = await pipe.execute()
    totals: list[dict[Outcome, int]] = []
    for index in range(len(broadcast_ids)):
        total = dict.fromkeys(Outcome, 0)
        for row in found[index * keys.CASE_SHARDS:(index + 1) * keys.CASE_SHARDS]:
            for outcome, value in zip(COUNTED, row, strict=True):
                total[outcome] += int(value or 0)
        totals.append(total)
    return totals


@dataclass(frozen=True)
class Moved:
    moved: bool
    status: str
    """The status before the move (moved), or the one that prevented it; '' if no such."""


async def move(redis: Any, broadcast_id: str, *, from_statuses: Iterable[BroadcastStatus],
               to: BroadcastStatus, actor: str, now: datetime, action: str = "",
               detail: Mapping[str, object] | None = None, active: str = "",
               fields: Mapping[str, str] | None = None) -> Moved:
    """Change a broadcast's status if it is one of `from_statuses` (atomic), audited as
    `action` (none when empty); `active` '+' or '-' adds it to or takes it from the set
    of active broadcasts."""
    outcome, status = await MOVE.run(
        redis, [keys.broadcast(broadcast_id), keys.broadcasts_active(), keys.broadcasts_audit()],
        [broadcast_id, _spaced(str(s) for s in from_statuses), str(to), active, actor, iso(now),
         action, json.dumps({"broadcast": broadcast_id, **(detail or {})}, sort_keys=True),
         *(part for pair in (fields or {}).items() for part in pair)])
    return Moved(text_of(outcome) == "ok", text_of(status))


async def active(redis: Any) -> list[str]:
    return sorted((text_of(found) for found in await redis.smembers(keys.broadcasts_active())),
                  key=int)


async def forget_active(redis: Any, broadcast_id: str) -> None:
    await redis.srem(keys.broadcasts_active(), broadcast_id)


async def shard_done(redis: Any, broadcast_id: str, shard: int, *, actor: str,
                     now: datetime) -> str:
    """Note one shard's share sent; the broadcast's status afterwards (`done` by the last)."""
    status = await SHARD_DONE.run(
        redis, [keys.broadcast(broadcast_id), keys.broadcast_shards_done(broadcast_id),
                keys.broadcasts_active(), keys.broadcasts_audit()],
        [broadcast_id, shard, keys.CASE_SHARDS, actor, iso(now),
         json.dumps({"broadcast": broadcast_id}, sort_keys=True)])
    return text_of(status)


async def shards_done(redis: Any, broadcast_id: str) -> set[int]:
    return {int(text_of(found))
            for found in await redis.smembers(keys.broadcast_shards_done(broadcast_id))}


async def events(redis: Any, broadcast_id: str) -> list[AuditEvent]:
    """The broadcast's audit events, oldest first."""
    found = []
    for entry_id, fields in await redis.xrange(keys.broadcasts_audit()):
        event = event_from_entry(entry_id, fields or {}, "")
        if event.detail.get("broadcast") == broadcast_id:
            found.append(event)
    return found


# --- audiences ---------------------------------------------------------------------


async def fix_audience(redis: Any, broadcast_id: str, shard: int, *,
                       countries: Iterable[str], languages: Iterable[str],
                       chunk: int = FIX_CHUNK) -> int:
    """Fix the shard's share of the audience (resumable: run again after a failure, it
    goes on where it stopped); the recipients queued in it."""
    call_keys = [keys.alert_subscriptions(shard), _audience(broadcast_id, shard, "st"),
                 _audience(broadcast_id, shard, "todo"), _audience(broadcast_id, shard, "n")]
    wanted_countries, wanted_languages = _spaced(countries), _spaced(languages)
    while True:
        complete, _ = await FIX_AUDIENCE.run(redis, call_keys,
                                             [chunk, wanted_countries, wanted_languages])
        if int(complete):
            return int(await redis.hget(call_keys[3], "queued") or 0)


async def drop_audience(redis: Any, broadcast_id: str, shard: int) -> None:
    """Forget a share fixed for an approval that did not happen (cancelled meanwhile)."""
    await redis.delete(*(_audience(broadcast_id, shard, part)
                         for part in ("todo", "doing", "st")))
    await redis.hset(_audience(broadcast_id, shard, "n"), mapping=dict.fromkeys(COUNTED, 0))


@dataclass(frozen=True)
class Recipient:
    pseudonym: str
    language: str
    channel: str
    phone: str
    claimed_at: datetime

    @classmethod
    def parse(cls, entry: str) -> Recipient:
        claimed_ms, pseudonym, language, channel, phone = entry.split(" ")
        return cls(pseudonym, language, channel, phone,
                   datetime.fromtimestamp(int(claimed_ms) / 1000, UTC))


@dataclass(frozen=True)
class Claimed:
    status: str
    """`ok`, `busy` (another sender holds the share) or `cancelled`."""
    uncertain: tuple[Recipient, ...] = ()
    """Claimed by an earlier holder that stopped: the message may have gone."""
    claimed: tuple[Recipient, ...] = ()
    busy_ms: int = 0


def _share_keys(broadcast_id: str, shard: int) -> list[str]:
    return [_audience(broadcast_id, shard, "n"), _audience(broadcast_id, shard, "todo"),
            _audience(broadcast_id, shard, "doing"), _audience(broadcast_id, shard, "st")]


async def claim(redis: Any, broadcast_id: str, shard: int, *, job_id: str, job_try: int,
                lease_ms: int, wanted: int) -> Claimed:
    """The next recipients of the share for the sender holding (or taking) its lease."""
    found = await CLAIM.run(redis, [*_share_keys(broadcast_id, shard),
                                    keys.alert_subscriptions(shard)],
                            [job_id, job_try, lease_ms, wanted])
    status = text_of(found[0])
    if status == "busy":
        return Claimed("busy", busy_ms=int(found[1]))
    if status != "ok":
        return Claimed(status)
    entries = [Recipient.parse(text_of(entry)) for entry in found[2:]]
    uncertain = int(found[1])
    return Claimed("ok", tuple(entries[:uncertain]), tuple(entries[uncertain:]))


async def record_outcome(redis: Any, broadcast_id: str, shard: int, pseudonym: str, *,
                         what: str, letter: str, holder: str = "", lease_ms: int = 0) -> str:
    """A recipient's send (`what`='sent') or Twilio's report ('status'); the new state
    ('' when nothing changed; 'r' when the alert must go again by SMS)."""
    share = _share_keys(broadcast_id, shard)
    new = await OUTCOME.run(redis, [share[0], share[2], share[3]],
                            [pseudonym, what, letter, holder, lease_ms])
    return text_of(new)


async def record_sends(redis: Any, broadcast_id: str, shard: int,
                       sent: list[tuple[str, str]], *, holder: str, lease_ms: int) -> list[str]:
    """`record_outcome(what='sent')` for each (pseudonym, letter) of a batch, in one round
    trip; the new states, in order."""
    share = _share_keys(broadcast_id, shard)
    async with batch(redis) as pipe:
        for pseudonym, letter in sent:
            OUTCOME.queue(pipe, [share[0], share[2], share[3]],
                          [pseudonym, "sent", letter, holder, lease_ms])
        return [text_of(new) for new in await pipe.execute()]


async def claim_fallback(redis: Any, broadcast_id: str, shard: int, pseudonym: str, *,
                         job_id: str, job_try: int) -> tuple[str, datetime | None]:
    """Claim the SMS replacing a refused WhatsApp alert: ('claimed'|'uncertain'|'busy'|
    'done', when an uncertain claim was made)."""
    found = await CLAIM_FALLBACK.run(redis, [_audience(broadcast_id, shard, "st")],
                                     [pseudonym, job_id, job_try])
    status = text_of(found[0])
    since = None
    if status == "uncertain":
        since = datetime.fromtimestamp(int(text_of(found[1])) / 1000, UTC)
    return status, since


async def close_share(redis: Any, broadcast_id: str, shard: int, *, cancel: bool = False,
                      holder: str = "") -> bool:
    """End the share: once all sent (False while some is left), or cancelled at once."""
    closed = await CLOSE_SHARE.run(redis, _share_keys(broadcast_id, shard),
                                   ["cancel" if cancel else "done", STATES_KEPT_SECONDS,
                                    holder])
    return bool(int(closed))


async def release_share(redis: Any, broadcast_id: str, shard: int, *, holder: str) -> None:
    """Let the share's lease go, if `holder` has it: the next run takes over at once."""
    await CLOSE_SHARE.run(redis, _share_keys(broadcast_id, shard),
                          ["release", STATES_KEPT_SECONDS, holder])


async def last_sms_expiry(redis: Any, pseudonym: str) -> int | None:
    """When the phone's SMS-channel receipts expire (epoch second), if it has any: they are
    written with each message it sends (`bot.store.phone_state`), so this tells when it
    last wrote (this, less their lifetime). Read for WhatsApp's 24-hour window."""
    raw = await redis.get(keys.phone_state(pseudonym))
    return phone_state.expiries(raw).get(phone_state.receipts_part(Channel.SMS))


async def share_cancelled(redis: Any, broadcast_id: str, shard: int) -> bool:
    return await redis.hget(_audience(broadcast_id, shard, "n"), "cancelled") is not None


async def lease_of(redis: Any, broadcast_id: str, shard: int) -> tuple[str, int] | None:
    """The share's sender lease: (holder, expiry ms), if any."""
    raw = await redis.hget(_audience(broadcast_id, shard, "n"), "lease")
    if raw is None:
        return None
    holder, _, expiry = text_of(raw).rpartition("|")
    return holder, int(expiry)


async def recipient_state(redis: Any, broadcast_id: str, shard: int, pseudonym: str) -> str:
    raw = await redis.hget(_audience(broadcast_id, shard, "st"), pseudonym)
    return "" if raw is None else text_of(raw)
