"""Outreach's rules applied to the store, for the parts of the app that are no worker job:
a Twilio status report about an alert (the status webhook reaches storage only through a
service, as for cases)."""

from __future__ import annotations

from typing import Any

from bot.outreach.broadcasts import parse_recipient_tag, status_letter
from bot.store import broadcasts as store


async def record_alert_status(redis: Any, *, tag: str, status: str, error_code: str) -> str:
    """Note Twilio's report for the recipient `tag` names (`<id>.<shard>.<pseudonym>`, the
    status callback's `bc`). Returns the recipient's new state ('' when nothing changed,
    'r' when the alert must go again by SMS), or 'unknown' for a malformed tag."""
    parsed = parse_recipient_tag(tag)
    if parsed is None:
        return "unknown"
    letter = status_letter(status, error_code)
    if letter is None:
        return ""
    broadcast_id, shard, pseudonym = parsed
    return await store.record_outcome(redis, broadcast_id, shard, pseudonym, what="status",
                                      letter=letter)
