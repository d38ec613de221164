"""Erasure beyond the case record: the copies a phone's receipts keep of its answers.

The receipts (`keys.receipts`) hold the last screens the phone was shown, so a
retried message gets the same answer; a request's summary screen repeats the
name, nationality and city. When a case is erased those texts go too: each
kept answer is blanked (a retry then gets an empty answer, not a second turn),
and the USSD session and input history are dropped (the typed answers are in
it; the next hop starts afresh).
"""

from __future__ import annotations

from typing import Any

from bot.store import keys
from bot.store.case_scripts import LuaScript
from bot.types import Channel

FORGET_ANSWERS = LuaScript(
    "forget_answers",
    """
-- KEYS[1..] the receipts of one phone, one key per channel (one hash tag: one slot)
-- Blanks every kept answer's text and drops the USSD session and input history;
-- keeps the message digests (retries stay idempotent) and the key's TTL.
for i = 1, #KEYS do
  local raw = redis.call('GET', KEYS[i])
  if raw then
    local data = cjson.decode(raw)
    data['s'] = nil
    data['h'] = nil
    for _, answer in ipairs(data['a'] or {}) do answer[2] = '' end
    redis.call('SET', KEYS[i], cjson.encode(data), 'KEEPTTL')
  end
end
return 1
""",
)


async def forget_answers(redis: Any, *, pseudonym: str) -> None:
    """Blank what the phone's receipts repeat of its answers, on every channel."""
    await FORGET_ANSWERS.run(redis, [keys.receipts(pseudonym, channel) for channel in Channel], [])
