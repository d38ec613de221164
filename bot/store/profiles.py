"""Per-phone profile (language, opt-out) updated outside a conversation step."""

from __future__ import annotations

import json
from typing import Any

from bot.store import keys
from bot.store.case_scripts import LuaScript

UPDATE_PROFILE = LuaScript(
    "update_profile",
    """
-- KEYS[1] profile  ARGV[1] JSON object of fields to set  ARGV[2] TTL (s)
-- Merges the fields into the stored profile atomically. An opted-out profile
-- never expires: the opt-out holds until START, however long that takes.
local raw = redis.call('GET', KEYS[1])
local profile = raw and cjson.decode(raw) or {}
for field, value in pairs(cjson.decode(ARGV[1])) do
  profile[field] = value
end
if profile['opted_out'] then
  redis.call('SET', KEYS[1], cjson.encode(profile))
else
  redis.call('SET', KEYS[1], cjson.encode(profile), 'EX', ARGV[2])
end
return 1
""",
)


async def is_opted_out(redis: Any, pseudonym: str) -> bool:
    """Whether the phone opted out of SMS (its profile says so)."""
    raw = await redis.get(keys.profile(pseudonym))
    if raw is None:
        return False
    return bool(json.loads(raw.decode() if isinstance(raw, bytes) else raw).get("opted_out"))


async def update_profile(redis: Any, *, pseudonym: str, fields: dict[str, Any], ttl: int) -> None:
    await UPDATE_PROFILE.run(redis, [keys.profile(pseudonym)], [json.dumps(fields), ttl])
