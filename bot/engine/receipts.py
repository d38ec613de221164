"""What one phone was answered lately on one channel: retries get the same answer.

Stored beside the session (one compact part of the phone's state per channel), read
and written by the same two scripts as the session, so idempotency costs no
extra round trip. It also remembers the USSD gateway session and the input
history already applied, and a keyword waiting for its confirmation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bot.types import statically_frozen

MAX_ANSWERS = 4
"""Retries come within seconds (Twilio's own timeout is 15 s); four later messages of one
phone answered before a retry arrives is far beyond any retry."""
TEXTS_KEPT = 2
"""Answers whose text is kept (memory): a gateway retries within seconds, before two
later messages are answered. An older answer keeps its digest, so a late retry of its
message is still not applied twice; it is answered empty."""
USSD_ANSWERS = TEXTS_KEPT
"""Answers kept on USSD, each with its text: the phone waits for each answer before its
next hop, so a gateway retries the hop it waits on, or (late) the one before; an older
hop's retry is known from the input history (`new_input`) and not applied."""
SCREEN = "\x1a"
"""An answer's text that is a screen rendered from a session's state, language and
variables alone, rendered again for a retry rather than kept (Redis memory): SCREEN
alone, from the session stored with the receipts (the last answer only); SCREEN and a
JSON session, from that one."""
_DIGEST_BYTES = 5
_DIGEST_HEX = 2 * _DIGEST_BYTES
"""Per phone, among its last MAX_ANSWERS messages: 40 bits are plenty."""
GS = "\x1d"
FS = "\x1c"
_SEPARATORS = frozenset("\x1c\x1d\x1e\x1f")


def message_digest(message_id: str) -> str:
    """A short fixed-size name for a gateway's message id (a USSD history can be long)."""
    return hashlib.blake2b(message_id.encode(), digest_size=_DIGEST_BYTES).hexdigest()


@statically_frozen
class Answer:
    digest: str
    text: str
    end: bool = False


@statically_frozen
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

    def turned(self, ussd_session: str, ussd_applied: str, pending: str,
               last_text: str | None = None) -> Receipts:
        """As a turn leaves them, before its answer is added: the USSD session and input
        history applied, the keyword pending, and (`last_text`) the last answer's new text."""
        answers = self.answers
        if last_text is not None:
            last = answers[-1]
            answers = (*answers[:-1], Answer(last.digest, last_text, last.end))
        return Receipts(answers, ussd_session, ussd_applied, pending)

    @property
    def last(self) -> Answer | None:
        return self.answers[-1] if self.answers else None

    def answered(self, digest: str, text: str, end: bool) -> Receipts:
        answers = [answer for answer in self.answers if answer.digest != digest]
        answers.append(Answer(digest, text, end))
        if self.ussd_session:  # USSD: each answer kept has its text
            del answers[:-USSD_ANSWERS]
        else:
            del answers[:-MAX_ANSWERS]
            for index in range(len(answers) - TEXTS_KEPT):
                answer = answers[index]
                if answer.text:
                    answers[index] = Answer(answer.digest, "", answer.end)
        return Receipts(tuple(answers), self.ussd_session, self.ussd_applied, self.pending)

    def to_json(self) -> str:
        """Compact (Redis memory): USSD session, input history and pending keyword joined
        by GS, then each answer as FS, its digest, 0/1 (ends the session) and its text.
        The stored scripts find a retry by FS + digest and blank texts on erasure."""
        joined = f"{self.ussd_session}{GS}{self.ussd_applied}{GS}{self.pending}"
        for answer in self.answers:  # at most four
            joined += f"{FS}{answer.digest}{'1' if answer.end else '0'}{answer.text}"
        return joined

    @classmethod
    def from_json(cls, raw: str | None) -> Receipts:
        if not raw:
            return cls()
        head, *answers = raw.split(FS)
        session, applied, pending = head.split(GS, 2)
        return cls(
            answers=tuple(Answer(entry[:_DIGEST_HEX], entry[_DIGEST_HEX + 1:],
                                 entry[_DIGEST_HEX] == "1") for entry in answers),
            ussd_session=session,
            ussd_applied=applied,
            pending=pending,
        )


def ussd_session_digest(session_id: str) -> str:
    """What the receipts keep of a USSD gateway's session id (a short digest)."""
    return hashlib.blake2b(session_id.encode(), digest_size=6).hexdigest()


def stored_history(history: str) -> str:
    """A USSD input history as the receipts keep it (their separators taken out)."""
    if history.isprintable() or _SEPARATORS.isdisjoint(history):  # separators: control
        return history
    return "".join(" " if ch in _SEPARATORS else ch for ch in history)


# What a USSD hop adds: the gateway sends every input of its session so far.
#
# Africa's Talking posts `text` = all inputs joined by `*` (empty on the first
# request). The new input is what follows the history already applied. A hop is
# never allowed to derail the session: a first request that already carries
# inputs (a direct dial such as `*384*55*2#` gives `2`) starts the conversation
# and takes them as its history; a replayed older hop answers the current
# screen again; a history that no longer extends the applied one (a gateway that
# sends only the latest input) is read from its last input.

SEPARATOR = "*"


@dataclass
class HopInput:
    restart: bool = False
    """The first hop of a gateway session: start a conversation."""
    text: str = ""
    """The new input to apply."""
    replay: bool = False
    """Nothing new: answer the last screen again without advancing."""


def new_input(*, seen_session: str, applied: str, session_id: str, history: str) -> HopInput:
    """The input a hop brings, given the gateway session and history applied before it."""
    if session_id != seen_session:
        return HopInput(restart=True)
    if not history or history == applied or applied.startswith(history + SEPARATOR):
        return HopInput(replay=True)
    if not applied:
        return HopInput(text=history)
    if history.startswith(applied + SEPARATOR):
        return HopInput(text=history[len(applied) + 1:])
    return HopInput(text=history.rsplit(SEPARATOR, 1)[-1])
