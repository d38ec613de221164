"""Lua scripts sent by digest (EVALSHA) on the hot path: 40 bytes a call, not the body.

redis-py's `Script` objects add a SCRIPT EXISTS round trip to every pipeline;
these don't. A NOSCRIPT answer (the server restarted, or a Cluster node never
saw the script) is rescued by sending the body once with EVAL, which also
loads it for the next calls.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError


@dataclass(frozen=True)
class ShaScript:
    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())  # noqa: S324

    def queue(self, pipe: Any, keys: list[str], args: list[str | int]) -> None:
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    def queue_body(self, pipe: Any, keys: list[str], args: list[str | int]) -> None:
        pipe.eval(self.source, len(keys), *keys, *args)

    async def run(self, redis: Any, keys: list[str], args: list[str | int]) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await redis.eval(self.source, len(keys), *keys, *args)


def unknown_script(result: Any) -> bool:
    """True when a pipelined EVALSHA was answered NOSCRIPT (nothing ran)."""
    return isinstance(result, NoScriptError)
