"""The hop deadline: one loop timer for every hop in flight, not one a hop.

`asyncio.timeout` arms a loop timer when a hop starts and cancels it when the
hop ends (on uvloop: a libuv timer allocated, started, stopped and closed, a
few µs a hop). Every hop has the same allowance, so the hops in flight, kept
in the order they started, are also in the order they fall due: one timer,
armed at the oldest hop's deadline, cancels each hop past its own (as
`asyncio.timeout` would: `Task.cancel`, then `uncancel` when the hop leaves)
and re-arms at the next one's. A hop costs a dict insert and a pop.
"""

from __future__ import annotations

import asyncio

CLOCK_SLACK = 0.001
"""The loop clock's resolution (uvloop's is the millisecond): a hop this close to its
deadline when the timer fires is due."""


class Deadlines:
    """Hops in flight (one task each) and when each must be answered."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._due: dict[asyncio.Task[object], float] = {}
        """Insertion order is start order, hence deadline order."""
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def enter(self) -> asyncio.Task[object]:
        """The current task's hop starts: it is cancelled if still in flight in `seconds`."""
        task: asyncio.Task[object] | None = asyncio.current_task()
        if task is None:
            raise RuntimeError("a hop's deadline needs a running task")
        loop = asyncio.get_running_loop()
        due = loop.time() + self.seconds
        self._due[task] = due
        if self._timer is None or self._loop is not loop:
            self._arm(loop, due)
        return task

    def leave(self, task: asyncio.Task[object]) -> bool:
        """The hop is over. When it went past its deadline, the cancellation made for it
        is withdrawn (as `asyncio.timeout` does), and True is returned unless the task
        is being cancelled for another reason too (the server's shutdown)."""
        if self._due.pop(task, None) is not None:
            return False
        if task in self._expired:
            self._expired.discard(task)
            return task.uncancel() == 0
        return False

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._loop = loop
        self._timer = loop.call_at(due, self._expire)

    def _expire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time() + CLOCK_SLACK
        due = self._due
        while due:
            task, deadline = next(iter(due.items()))
            if deadline > now:
                self._arm(loop, deadline)
                return
            del due[task]
            if not task.done():
                self._expired.add(task)
                task.cancel()
