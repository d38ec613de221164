"""Background jobs the case services ask for, queued on the worker's job queue.

The worker registers functions under these names; a job carries only
references and ids, and the worker reads the rest (phone, text) when it runs,
so an erasure in between leaves nothing to send.
"""

from __future__ import annotations

from typing import Protocol

# send_case_message(reference: str, entry_id: str): SMS a journal entry of kind `message`.
SEND_CASE_MESSAGE = "send_case_message"
# notify_escalation(reference: str, level: int): tell on-call about an escalated case.
NOTIFY_ESCALATION = "notify_escalation"


class CaseJobs(Protocol):
    """Where the case services queue jobs (bot.jobs.queue.JobQueue in the app)."""

    async def enqueue(self, job: str, *args: str | int) -> object: ...

    async def close(self) -> None: ...
