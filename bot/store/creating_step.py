"""A step that creates a case, in one script with the phone's state.

A phone's state sits in its case shard's slot (`keys.phone_state`), so the
step of a return request's confirmation checks the phone's state, creates the
case (CREATE_CASE's own code, its keys and arguments after the step's) and
writes the state in one script: one command a hop, on one server, Sentinel and
Cluster alike. STEP_CREATE is STEP with the creation before its write (one
round trip when this process knows the phone's state); COMMIT_CREATE is COMMIT
with it (after BEGIN, when it does not).
"""

from __future__ import annotations

from typing import Any

from bot.store import phone_state, sessions
from bot.store.case_scripts import AUDIT_FUNCTION, CREATE_CASE
from bot.store.scripts import Script
from bot.store.sessions import Commit, Loaded, PhoneKeys, RateLimit

STEP_ARGS = 18
"""STEP's arguments; the creation's follow (and its keys follow STEP's three)."""
COMMIT_ARGS = 11

_CREATE_FUNCTION = (
    AUDIT_FUNCTION
    + "local function create_case(KEYS, ARGV)\n"
    + CREATE_CASE.source[len(AUDIT_FUNCTION):]
    + "\nend\n"
)
"""CREATE_CASE's body as a function of its own KEYS and ARGV (CREATE_CASE's contract)."""

STEP_CREATE = Script(
    "step_and_create",
    phone_state.LUA_PARTS + _CREATE_FUNCTION + sessions.BEGIN_DOC + sessions.STEP_DOC + """
-- KEYS[4..] and ARGV[19..]: CREATE_CASE's, run once the checks pass, before the write.
-- Returns {4, CREATE_CASE's reply} once written; else as STEP.
""" + sessions.STEP_CHECKS + """
local created = create_case({unpack(KEYS, 4)}, {unpack(ARGV, 19)})
write_values(10)
return {4, created}
""",
)

COMMIT_CREATE = Script(
    "commit_and_create",
    phone_state.LUA_PARTS + _CREATE_FUNCTION + """
-- KEYS[1..2] and ARGV[1..11] as COMMIT's; KEYS[3..] and ARGV[12..]: CREATE_CASE's.
-- Returns {1, CREATE_CASE's reply} once written; 0 when the lease was lost (nothing done).
""" + sessions.COMMIT_CHECKS + """
local created = create_case({unpack(KEYS, 3)}, {unpack(ARGV, 12)})
write_values(3)
redis.call('DEL', KEYS[2])
return {1, created}
""",
)


def queue_step_create(pipe: Any, phone_keys: PhoneKeys, token: str, *, expected: str,
                      digest: str, rate: RateLimit, values: Commit,
                      creation: tuple[list[str], list[str | int]], by_body: bool = False) -> None:
    step_keys, step_args = sessions.step_call(phone_keys, token, expected=expected,
                                              digest=digest, rate=rate, values=values)
    create_keys, create_args = creation
    queue = STEP_CREATE.queue_body if by_body else STEP_CREATE.queue
    queue(pipe, [*step_keys, *create_keys], [*step_args, *create_args])


def step_create_result(raw: Any) -> tuple[Loaded, Any]:
    """STEP's outcome, and CREATE_CASE's reply once written (None otherwise)."""
    loaded = sessions.begin_result(raw)
    return loaded, raw[1] if loaded.outcome is sessions.Begun.WRITTEN else None


def queue_commit_create(pipe: Any, phone_keys: PhoneKeys, token: str, values: Commit,
                        creation: tuple[list[str], list[str | int]],
                        by_body: bool = False) -> None:
    commit_keys, commit_args = sessions.commit_call(phone_keys, token, values)
    create_keys, create_args = creation
    queue = COMMIT_CREATE.queue_body if by_body else COMMIT_CREATE.queue
    queue(pipe, [*commit_keys, *create_keys], [*commit_args, *create_args])


def commit_create_result(raw: Any) -> tuple[bool, Any]:
    """Whether the commit was saved, and CREATE_CASE's reply."""
    if isinstance(raw, list):
        return True, raw[1]
    return False, None
