"""Every Redis key name of the helpline, built in one place.

Keys carry a hash tag (`{...}`) so that the keys one operation touches together
sit in one Redis Cluster slot, by design:

- per case shard, `{cs<n>...}` (CASE_SHARDS of them): the case records of the
  shard, their journals, deliveries, referrals and the shard's indexes, audit stream,
  outbox stream, sequence and idempotency keys; and the state and lease of
  every phone whose new cases go to the shard (`shard_of_phone`), so that a
  step that creates a case is one script. The pseudonym is an HMAC of the
  phone number, so no number appears in a key name.
  A case lives in the shard its reference names (`shard_of`), so one script
  writes a case, its indexes and its audit atomically, while the shards
  spread the cases over the masters of a Cluster. The shard tags are chosen
  so that shard n hashes into the n-th sixteenth of the slot space: any even
  split of slots over masters gives each master its share of shards.
- the operators, `{ops}`; a Twilio MessageSid's delivery, its own slot.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

PREFIX = "hl"

CASE_SHARDS = 16
# Shard n's tag hashes into slots [n * 1024, (n + 1) * 1024) (tests/unit/test_keys.py).
SHARD_TAGS = (
    "cs0.11", "cs1.12", "cs2", "cs3.21", "cs4.61", "cs5.62", "cs6.1", "cs7.2",
    "cs8.3", "cs9.4", "cs10.42", "cs11.41", "cs12.3", "cs13.4", "cs14.21", "cs15.22",
)  # fmt: skip
SHARDS = range(CASE_SHARDS)


def phone_state(pseudonym: str) -> str:
    """A phone's whole conversation state: one compact value (`bot.store.phone_state`).

    Under the tag of the phone's case shard (`shard_of_phone`), where its new cases
    go: a step that creates a case writes both in one script, on a Cluster too.
    """
    return f"{_shard(shard_of_phone(pseudonym))}:ph:{pseudonym}"


def lease(pseudonym: str) -> str:
    """The phone's lease (one writer at a time), beside its state."""
    return f"{phone_state(pseudonym)}:lease"


def abandoned_lease(pseudonym: str, token: str) -> str:
    """Marks a lease token given up on: its BEGIN, if Redis runs it late, takes nothing."""
    return f"{phone_state(pseudonym)}:lease:abandoned:{token}"


# --- case shards ---------------------------------------------------------------


def shard_of(reference: str) -> int:
    """The shard of a case: its reference's first seven digits, modulo CASE_SHARDS."""
    return int(reference[:7]) % CASE_SHARDS


@lru_cache(maxsize=65536)
def shard_of_phone(pseudonym: str) -> int:
    """The shard where a phone's new cases go (their references are drawn in it).

    All of a phone's cases share one shard, so its erasure and the look-up of
    what its creations made are one slot's business.
    """
    digest = hashlib.sha256(pseudonym.encode()).digest()
    return int.from_bytes(digest[:4], "big") % CASE_SHARDS


def _shard(shard: int) -> str:
    return f"{PREFIX}:{{{SHARD_TAGS[shard]}}}"


def case(reference: str) -> str:
    """Hash: one case record."""
    return f"{_shard(shard_of(reference))}:case:{reference}"


def case_prefix(shard: int) -> str:
    """What a shard's case record keys start with (the reference follows)."""
    return f"{_shard(shard)}:case:"


def case_answers(reference: str) -> str:
    """The migrant's answers of one case (JSON; personal data: erased with the case).

    Apart from the record so that the record keeps only short values (a compact
    listpack hash in Redis).
    """
    return f"{_shard(shard_of(reference))}:answers:{reference}"


def case_trail(reference: str) -> str:
    """The ids of one case's events in its shard's audit stream, space-separated."""
    return f"{_shard(shard_of(reference))}:trail:{reference}"


def answers_prefix(shard: int) -> str:
    """What a shard's answers keys start with (the reference follows)."""
    return f"{_shard(shard)}:answers:"


def case_notes(reference: str) -> str:
    """Operators' notes on one case (personal data: erased with the case)."""
    return f"{_shard(shard_of(reference))}:notes:{reference}"


def case_idempotency(shard: int, key: str) -> str:
    """Reference already created for one draft: a retried submission creates nothing new."""
    return f"{_shard(shard)}:idem:{key}"


def case_sequence(shard: int) -> str:
    """Counter of the shard's cases (it breaks ties of creation time in triage order)."""
    return f"{_shard(shard)}:seq"


def shard_audit(shard: int) -> str:
    """Append-only stream of the audit events of every case of the shard, in order.

    A case's record lists the ids of its own events (field `audit`).
    """
    return f"{_shard(shard)}:audit"


def cases_triage(shard: int) -> str:
    """Sorted set of the shard's cases, scored in triage order."""
    return f"{_shard(shard)}:idx:all"


def cases_by_status(shard: int, status: str) -> str:
    return f"{_shard(shard)}:idx:status:{status}"


def cases_by_kind(shard: int, kind: str) -> str:
    return f"{_shard(shard)}:idx:kind:{kind}"


def cases_by_priority(shard: int, priority: str) -> str:
    return f"{_shard(shard)}:idx:priority:{priority}"


def cases_by_assignee(shard: int, assignee: str) -> str:
    return f"{_shard(shard)}:idx:assignee:{assignee}"


def cases_escalated(shard: int) -> str:
    return f"{_shard(shard)}:idx:escalated"


def cases_by_phone(shard: int, pseudonym: str) -> str:
    """Set of the references of one phone's cases in one shard (its own, `shard_of_phone`,
    unless a case was created with chosen references)."""
    return f"{_shard(shard)}:phone:{pseudonym}"


def cases_per_day(shard: int) -> str:
    """Hash: creation day (YYYY-MM-DD, UTC) → number of the shard's cases created that day."""
    return f"{_shard(shard)}:stats:day"


def cases_outbox(shard: int) -> str:
    """Stream of events that case creation leaves for the worker (transactional outbox)."""
    return f"{_shard(shard)}:outbox"


def alert_subscriptions(shard: int) -> str:
    """Hash: pseudonym → alert subscription record (`bot.outreach.subscriptions`) of the
    shard's phones; beside their states, and spread over the masters with the shards."""
    return f"{_shard(shard)}:alerts"


def alert_counts(shard: int) -> str:
    """Hash: `<country> <language>` → the shard's subscriptions with them (audience sizes)."""
    return f"{_shard(shard)}:alerts:n"


def broadcast_audience(broadcast_id: str, shard: int, part: str) -> str:
    """One shard's share of a broadcast's audience, beside its phones' subscriptions:
    `todo` (list of recipients to send to), `doing` (hash: claimed, not finished),
    `st` (hash: pseudonym → where it is), `n` (hash: counts, the sender's lease)."""
    return f"{_shard(shard)}:bc:{broadcast_id}:{part}"


def delivery(delivery_id: str, reference: str) -> str:
    """Hash: one outbound SMS or webhook call about a case, its state, attempts and SID."""
    return f"{_shard(shard_of(reference))}:delivery:{delivery_id}"


def case_referrals(reference: str) -> str:
    """Hash: referral id → the referral of one case to a partner's system (JSON, no
    personal field), beside its case in the shard."""
    return f"{_shard(shard_of(reference))}:referrals:{reference}"


def referral_notes(reference: str) -> str:
    """Hash: referral id → the operator's note on it (free text: erased with the case)."""
    return f"{_shard(shard_of(reference))}:referral_notes:{reference}"


def cases_ended(shard: int) -> str:
    """Sorted set: reference of each closed or withdrawn case → epoch second it ended."""
    return f"{_shard(shard)}:idx:ended"


def cases_ended_cursor(shard: int) -> str:
    """Id of the last event of the shard's audit stream read into the ended index."""
    return f"{_shard(shard)}:idx:ended:cursor"


def followups(shard: int) -> str:
    """Hash: reference → the case's follow-up record (its return time and check-ins,
    `bot.store.followups`), for every case of the shard that has one."""
    return f"{_shard(shard)}:fu"


def followups_due(shard: int) -> str:
    """Sorted set: reference → epoch second its next check-in is due (or its sent one
    expires): what the worker looks at each second."""
    return f"{_shard(shard)}:fu:due"


def report_facts(shard: int) -> str:
    """Hash: reference → what the programme report counts of the case (a short fact,
    `lua/report_facts.lua`), kept up to date by the worker from the audit stream."""
    return f"{_shard(shard)}:rf"


def followups_cursor(shard: int) -> str:
    """Id of the last event of the shard's audit stream the follow-ups were synced from."""
    return f"{_shard(shard)}:fu:cursor"


# --- operators and status callbacks -------------------------------------------------


def operators() -> str:
    """Hash: operator name → operator record (JSON, token stored hashed)."""
    return f"{PREFIX}:{{ops}}:operators"


def operator_token(token_hash: str) -> str:
    """Operator name by the SHA-256 of its token."""
    return f"{PREFIX}:{{ops}}:token:{token_hash}"


def delivery_by_sid(message_sid: str) -> str:
    """The delivery a Twilio MessageSid belongs to (status callbacks)."""
    return f"{PREFIX}:sid:{message_sid}"


def auth_failures(client: str) -> str:
    """Counter of wrong tokens from one client (a digest of its address) in the window."""
    return f"{PREFIX}:{{auth}}:failures:{client}"


# The job queue, `{jobs}`: its stream, its delayed jobs and its once-only marks sit
# in one slot, so that queuing or promoting a job is one atomic script on Cluster too.
def _jobs() -> str:
    return f"{PREFIX}:{{jobs}}"


def jobs_stream() -> str:
    """The jobs ready to run (a stream read by the workers' consumer group)."""
    return f"{_jobs()}:stream"


def jobs_delayed() -> str:
    """Jobs due later (retries with back-off), scored by due time in epoch ms."""
    return f"{_jobs()}:delayed"


def job_once(job_id: str) -> str:
    """Marks a job id queued, so that queuing it again does nothing for a while."""
    return f"{_jobs()}:once:{job_id}"


# Broadcasts, `{bc}`: their records, list, audit and sequence in one slot (a few a week);
# their audiences are per case shard (`broadcast_audience`).
def _broadcasts() -> str:
    return f"{PREFIX}:{{bc}}"


def broadcast(broadcast_id: str) -> str:
    """Hash: one broadcast (texts, targets, status, who wrote and approved it)."""
    return f"{_broadcasts()}:b:{broadcast_id}"


def broadcasts_all() -> str:
    """Sorted set: broadcast id → the id as a number (ids grow), for the newest-first list."""
    return f"{_broadcasts()}:all"


def broadcasts_active() -> str:
    """Set: ids of the broadcasts approved and not finished (the worker's round)."""
    return f"{_broadcasts()}:active"


def broadcast_sequence() -> str:
    return f"{_broadcasts()}:seq"


def broadcasts_audit() -> str:
    """Append-only stream of the broadcasts' audit events (created, approved, cancelled…)."""
    return f"{_broadcasts()}:audit"


def broadcast_shards_done(broadcast_id: str) -> str:
    """Set: the shards whose share of a broadcast is all sent (or skipped)."""
    return f"{_broadcasts()}:b:{broadcast_id}:done"


def outbound_pace() -> str:
    """The next free slot of the deployment's one outbound budget (`bot.jobs.pace`)."""
    return f"{PREFIX}:{{pace}}:outbound"
