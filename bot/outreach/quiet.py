"""Quiet hours (`HELPLINE_QUIET_HOURS` in `HELPLINE_TIMEZONE`): when a non-urgent
broadcast waits. Pure: the time is passed in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

_SPAN = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*-\s*(\d{1,2})(?::(\d{2}))?\s*$")


@dataclass(frozen=True)
class QuietHours:
    """From `start` to `end`, local time; wraps past midnight when `end` <= `start`."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, zone: str) -> QuietHours | None:
        """`21-07`, `21:30-06:45`; None for an empty setting (no quiet hours).
        ValueError naming the expected form otherwise."""
        if not text.strip():
            return None
        found = _SPAN.match(text)
        if found is None:
            raise ValueError(f"HELPLINE_QUIET_HOURS: {text!r} is not HH-HH or HH:MM-HH:MM")
        start_h, start_m, end_h, end_m = (int(part or 0) for part in found.groups())
        if start_h > 23 or end_h > 23 or start_m > 59 or end_m > 59:
            raise ValueError(f"HELPLINE_QUIET_HOURS: {text!r} is not a time of day")
        start, end = time(start_h, start_m), time(end_h, end_m)
        if start == end:
            raise ValueError(f"HELPLINE_QUIET_HOURS: {text!r} starts and ends at once")
        return cls(start=start, end=end, zone=ZoneInfo(zone))

    def ends_after(self, now: datetime) -> datetime | None:
        """When the quiet hours `now` falls in end (an aware datetime in `now`'s zone);
        None when `now` is not in quiet hours."""
        local = now.astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        wraps = self.end <= self.start
        if wraps:
            inside = clock >= self.start or clock < self.end
        else:
            inside = self.start <= clock < self.end
        if not inside:
            return None
        day = local.date()
        if wraps and clock >= self.start:
            day += timedelta(days=1)
        ends = datetime.combine(day, self.end, tzinfo=self.zone)
        return ends.astimezone(now.tzinfo)
