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
