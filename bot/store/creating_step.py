"""A step that creates a case, in one script with the phone's state.

A phone's state sits in its case shard's slot (`keys.phone_state`), so the
step of a return request's confirmation checks the phone's state, creates the
case and writes the state in one call of `phone.lua`: one command a hop, on
one server, Sentinel and Cluster alike. STEP_CREATE is STEP with the creation
before its write (one round trip when this process knows the phone's state);
COMMIT_CREATE is COMMIT with it (after BEGIN, when it does not). The creation's
keys and arguments are `cases.create_case_call`'s.
"""

from __future__ import annotations

from typing import Any

from bot.engine.stored import Commit
from bot.store import sessions
from bot.store.phone_state import PHONE
from bot.store.sessions import Call, Loaded, PhoneKeys, RateLimit


def queue_step_create(pipe: Any, phone_keys: PhoneKeys, token: str, *, expected: str,
                      digest: str, rate: RateLimit, values: Commit, creation: Call,
                      by_body: bool = False) -> None:
    call = sessions.step_call(phone_keys, token, expected=expected, digest=digest, rate=rate,
                              values=values, creation=creation)
    (PHONE.queue_body if by_body else PHONE.queue)(pipe, *call)


def step_create_result(raw: Any) -> tuple[Loaded, Any]:
    """STEP's outcome, and the creation's reply once written (None otherwise)."""
    loaded = sessions.begin_result(raw)
    return loaded, raw[1] if loaded.outcome is sessions.Begun.WRITTEN else None


def queue_commit_create(pipe: Any, phone_keys: PhoneKeys, token: str, values: Commit,
                        creation: Call, by_body: bool = False) -> None:
    call = sessions.commit_call(phone_keys, token, values, creation=creation)
    (PHONE.queue_body if by_body else PHONE.queue)(pipe, *call)


def commit_create_result(raw: Any) -> tuple[bool, Any]:
    """Whether the commit was saved, and the creation's reply."""
    if isinstance(raw, list):
        return True, raw[1]
    return False, None
