"""Every Redis key name of the helpline, built in one place.

Keys carry a hash tag (`{...}`) so that the keys one operation touches together
sit in one Redis Cluster slot:

- per phone, `{ph:<pseudonym>}`: session per channel, profile, draft, lease,
  idempotency replies and rate counters. The pseudonym is an HMAC of the
  phone number, so no number appears in a key name.
- the cases domain, `{cases}`: case records, their indexes and audit streams
  (case writes update the record and its indexes atomically).
"""

from __future__ import annotations

PREFIX = "hl"


def _phone(pseudonym: str) -> str:
    return f"{PREFIX}:{{ph:{pseudonym}}}"


def session(pseudonym: str, channel: str) -> str:
    return f"{_phone(pseudonym)}:session:{channel}"


def profile(pseudonym: str) -> str:
    return f"{_phone(pseudonym)}:profile"


def draft(pseudonym: str) -> str:
    return f"{_phone(pseudonym)}:draft"


def lease(pseudonym: str) -> str:
    return f"{_phone(pseudonym)}:lease"


def abandoned_lease(pseudonym: str, token: str) -> str:
    """Marks a lease token given up on: its BEGIN, if Redis runs it late, takes nothing."""
    return f"{_phone(pseudonym)}:lease:abandoned:{token}"


def receipts(pseudonym: str, channel: str) -> str:
    """The phone's last answers on one channel (idempotency) and its USSD input history."""
    return f"{_phone(pseudonym)}:receipts:{channel}"


def rate(pseudonym: str) -> str:
    """Counter of the phone's inbound SMS in the current rate-limit window."""
    return f"{_phone(pseudonym)}:rate"


def rate_repeats(pseudonym: str) -> str:
    """Digest of the phone's last free-text body and how often it came in a row (loops)."""
    return f"{_phone(pseudonym)}:repeats"


def unseen(pseudonym: str) -> str:
    """What the phone was never told (a case made while it got the fallback), for next contact."""
    return f"{_phone(pseudonym)}:unseen"


def phone_keys(pseudonym: str) -> str:
    """Pattern of every per-phone key (erasure and tests only, never on a hot path)."""
    return f"{_phone(pseudonym)}:*"


CASES_TAG = "{cases}"


def _cases() -> str:
    return f"{PREFIX}:{CASES_TAG}"


def case(reference: str) -> str:
    return f"{_cases()}:case:{reference}"


def case_idempotency(key: str) -> str:
    """Reference already created for one draft: a retried submission creates nothing new."""
    return f"{_cases()}:idem:{key}"


# --- cases domain (all under the `{cases}` tag) -------------------------------


def case_sequence() -> str:
    """Counter giving each case its creation rank (the tie-breaker of triage order)."""
    return f"{_cases()}:seq"


def case_audit(reference: str) -> str:
    """Append-only stream of one case's audit events."""
    return f"{_cases()}:audit:{reference}"


def cases_audit() -> str:
    """Append-only stream of every case's audit events, in order."""
    return f"{_cases()}:audit"


def case_notes(reference: str) -> str:
    """Operators' notes on one case (personal data: erased with the case)."""
    return f"{_cases()}:notes:{reference}"


def cases_triage() -> str:
    """Sorted set of every case, scored in triage order."""
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
    """Set of the references of one phone (by pseudonym), for the migrant's erasure."""
    return f"{_cases()}:phone:{pseudonym}"


def cases_per_day() -> str:
    """Hash: creation day (YYYY-MM-DD, UTC) → number of cases created that day."""
    return f"{_cases()}:stats:day"


def operators() -> str:
    """Hash: operator name → operator record (JSON, token stored hashed)."""
    return f"{_cases()}:operators"


def operator_token(token_hash: str) -> str:
    """Operator name by the SHA-256 of its token."""
    return f"{_cases()}:operator_token:{token_hash}"


def auth_failures(client: str) -> str:
    """Counter of wrong tokens from one client (a digest of its address) in the window."""
    return f"{PREFIX}:{{auth}}:failures:{client}"


# --- background work (all under the `{cases}` tag) ----------------------------


def cases_outbox() -> str:
    """Stream of events that case creation leaves for the worker (transactional outbox)."""
    return f"{_cases()}:outbox"


def delivery(delivery_id: str) -> str:
    """Hash: one outbound SMS or webhook call, its state, attempts and Twilio SID."""
    return f"{_cases()}:delivery:{delivery_id}"


def delivery_by_sid(message_sid: str) -> str:
    """The delivery a Twilio MessageSid belongs to (status callbacks)."""
    return f"{_cases()}:delivery_sid:{message_sid}"


def cases_ended() -> str:
    """Sorted set: reference of each closed or withdrawn case → epoch second it ended."""
    return f"{_cases()}:idx:ended"


def cases_ended_cursor() -> str:
    """Id of the last global audit event read into the ended index."""
    return f"{_cases()}:idx:ended:cursor"
