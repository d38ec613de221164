"""What one phone was answered lately on one channel: retries get the same answer.

Stored beside the session (one small JSON value per phone and channel), read
and written by the same two scripts as the session, so idempotency costs no
extra round trip. It also remembers the USSD gateway session and the input
history already applied, and a keyword waiting for its confirmation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

MAX_ANSWERS = 8
"""Retries come within seconds; eight later messages is far beyond any retry."""
TEXTS_KEPT = 2
"""Answers whose text is kept (memory): a gateway retries within seconds, before two
later messages are answered. An older answer keeps its digest, so a late retry of its
message is still not applied twice; it is answered empty."""
_DIGEST_BYTES = 8


def message_digest(message_id: str) -> str:
    """A short fixed-size name for a gateway's message id (a USSD history can be long)."""
    return hashlib.blake2b(message_id.encode(), digest_size=_DIGEST_BYTES).hexdigest()


@dataclass(frozen=True)
class Answer:
    digest: str
    text: str
    end: bool = False


@dataclass(frozen=True)
class Receipts:
    answers: tuple[Answer, ...] = ()
    ussd_session: str = ""
    ussd_applied: str = ""
    pending: str = ""
    """A keyword waiting for the phone's confirmation (erasure)."""

    def answer_for(self, digest: str) -> Answer | None:
        for answer in self.answers:
            if answer.digest == digest:
                return answer
        return None

    @property
    def last(self) -> Answer | None:
        return self.answers[-1] if self.answers else None

    def answered(self, digest: str, text: str, end: bool) -> Receipts:
        kept = tuple(answer for answer in self.answers if answer.digest != digest)
        answers = (*kept, Answer(digest, text, end))[-MAX_ANSWERS:]
        older = len(answers) - TEXTS_KEPT
        answers = tuple(replace(answer, text="") if index < older and answer.text else answer
                        for index, answer in enumerate(answers))
        return replace(self, answers=answers)

    def to_json(self) -> str:
        data: dict[str, Any] = {"a": [[a.digest, a.text, int(a.end)] for a in self.answers]}
        if self.ussd_session:
            data["s"] = self.ussd_session
            data["h"] = self.ussd_applied
        if self.pending:
            data["p"] = self.pending
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> Receipts:
        if not raw:
            return cls()
        data: dict[str, Any] = json.loads(raw)
        return cls(
            answers=tuple(Answer(str(d), str(t), bool(e)) for d, t, e in data.get("a", ())),
            ussd_session=str(data.get("s", "")),
            ussd_applied=str(data.get("h", "")),
            pending=str(data.get("p", "")),
        )
