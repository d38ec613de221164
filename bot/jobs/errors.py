"""What can go wrong when the worker calls out (Twilio, the escalation webhook, Primero)."""

from __future__ import annotations

from enum import StrEnum


class Failure(StrEnum):
    RETRY = "retry"
    """Not sent, and worth trying again (5xx before the request went, 429, refused)."""
    UNKNOWN = "unknown"
    """Maybe sent (a timeout once the request was out): look before sending again."""
    PERMANENT = "permanent"
    """Refused for good (4xx): trying again would fail the same way."""


class SendFailed(Exception):
    """An outbound call failed; `failure` says whether and how to try again."""

    def __init__(self, failure: Failure, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason
        self.code = code


class PrimeroFailed(Exception):
    """A call to Primero failed; `retry` says whether a later try may succeed (Primero
    recognises a repeat by the case's id, so trying again never makes a second case)."""

    def __init__(self, reason: str, *, retry: bool, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.status = status
        self.retry_after = retry_after
        """Seconds Primero asked us to wait (its `Retry-After`), if it did."""
