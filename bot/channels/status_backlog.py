"""Delivery statuses the store could not take when Twilio called: kept and recorded later.

Twilio does not send a status callback again once it is answered (its own retries,
for an error, span seconds at most, and a gateway never gets a 5xx from us), so a
status that arrives while Redis is restarting or frozen would be lost: a `failed`
alert would then never get its SMS fallback, a 21610 never mark the phone opted out,
a check-in call nobody took never be placed again.
The route answers 204 at once either way; a status it could not record waits here,
in this process's memory, and is recorded in arrival order once Redis answers again.
Recording is idempotent (a status seen before is not recorded twice), so a status
that was in fact written before its hop timed out does no harm when sent again.

A process stopping while Redis is still down (a deploy during an outage) writes
the statuses left to a file under `HELPLINE_DATA_DIR` (readable by its user only);
the next process to start takes each such file (one process each) and records them
once the store answers. What it cannot cover: a process killed outright, a data
directory not kept across restarts, and more than `MAX_WAITING` statuses in one
outage (the oldest are dropped, counted in a warning). A status holds a message (or
call) SID, a status, an error code, an alert recipient's tag and a check-in's token
(reference and number): no phone number, no body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import fields
from pathlib import Path

from redis.exceptions import RedisError

from bot.channels.twilio_sms import DeliveryStatus

log = logging.getLogger(__name__)

MAX_WAITING = 100_000
"""Statuses kept at most (a 20,000-recipient broadcast calls back two or three times each)."""
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
"""Pauses between tries while the store fails: quick at first, then every 5 s."""
TRY_SECONDS = 1.5
"""One record's bound (the webhooks' hop deadline)."""
CLOSE_SECONDS = 2.0
"""What shutting down spends on statuses still waiting."""
_FAILURES = (RedisError, OSError, TimeoutError)
SPOOL_FILES = "status-backlog-*.json"


class StatusBacklog:
    """Statuses waiting for the store, recorded by one task while any are waiting."""

    def __init__(self, record: Callable[[DeliveryStatus], Awaitable[None]],
                 spool: Path | None = None) -> None:
        """`spool`: the directory of what a shutdown could not record (None: nowhere)."""
        self.record = record
        self.spool = spool
        self.waiting: deque[DeliveryStatus] = deque()
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def add(self, status: DeliveryStatus) -> None:
        if len(self.waiting) >= MAX_WAITING:
            self.waiting.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("delivery statuses dropped: the store has been down too long",
                            extra={"count": self.dropped})
        self.waiting.append(status)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        tries = recorded = 0
        while self.waiting:
            await asyncio.sleep(RETRY_SECONDS[min(tries, len(RETRY_SECONDS) - 1)])
            tries += 1
            recorded += await self._record_waiting()
        log.info("delivery statuses recorded once the store answered", extra={"count": recorded})

    async def _record_waiting(self) -> int:
        """Records what waits, in order, until the store fails; how many it recorded."""
        recorded = 0
        while self.waiting:
            status = self.waiting[0]
            try:
                async with asyncio.timeout(TRY_SECONDS):
                    await self.record(status)
            except _FAILURES:
                return recorded
            except Exception:  # a bug, not the store: logged, not tried again
                log.exception("delivery status not recorded",
                              extra={"message_sid": status.message_sid})
            else:
                recorded += 1
            self.waiting.popleft()
        return recorded

    async def aclose(self) -> None:
        """One last try for what waits, then the count of what is lost."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.waiting:
            try:
                async with asyncio.timeout(CLOSE_SECONDS):
                    await self._record_waiting()
            except TimeoutError:
                pass
        if self.waiting and not self._spooled():
            log.warning("delivery statuses not recorded at shutdown: the store is down",
                        extra={"count": len(self.waiting)})

    def resume(self) -> None:
        """Statuses an earlier process left on disk at its shutdown: waiting again, here."""
        for path in sorted(self.spool.glob(SPOOL_FILES)) if self.spool is not None else ():
            taken = path.with_name(f"{path.name}.{os.getpid()}.taken")
            try:
                path.rename(taken)  # each file is taken by one process only
                kept = [DeliveryStatus(**entry) for entry in json.loads(taken.read_text())]
            except FileNotFoundError:
                continue  # another process took it
            except (OSError, ValueError, TypeError):
                log.exception("delivery statuses kept at a shutdown could not be read",
                              extra={"file": taken.name})
                continue
            taken.unlink()
            for status in kept:
                self.add(status)
            log.info("delivery statuses kept at a shutdown are waiting again",
                     extra={"count": len(kept)})

    def _spooled(self) -> bool:
        """What waits written to a file of its own under `spool`; whether it was."""
        if self.spool is None:
            return False
        path = self.spool / f"status-backlog-{os.getpid()}-{time.time_ns()}.json"
        partial = path.with_name(path.name + ".partial")
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as out:
                json.dump([_stored(status) for status in self.waiting], out)
            os.replace(partial, path)
        except OSError:
            log.exception("delivery statuses could not be kept on disk")
            return False
        log.warning("delivery statuses kept on disk for the next start: the store is down",
                    extra={"count": len(self.waiting)})
        self.waiting.clear()
        return True


def _stored(status: DeliveryStatus) -> dict[str, str]:
    """A status's fields as kept on disk, those at their default left out: the release
    before one that adds a field (a rollback during an outage) still reads every status
    that does not use it."""
    return {field.name: value for field in fields(status)
            if (value := getattr(status, field.name)) != field.default}
