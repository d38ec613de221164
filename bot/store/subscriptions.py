"""Alert subscriptions in Redis: one hash per case shard, pseudonym → record.

A phone's subscription sits in the shard of its state (`keys.shard_of_phone`):
the subscriptions spread over a Cluster's masters with the shards, and a
broadcast fixes its audience shard by shard, one slot at a time. Beside each
shard's subscriptions, their number per country and language (audience sizes
without a scan), kept in step by the one script that writes both. No rule here
(`bot.outreach.subscriptions` owns the record's layout).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from bot.outreach.subscriptions import Subscription
from bot.store import keys
from bot.store.cases import text_of
from bot.store.scripts import Script

SCAN_COUNT = 1000
SUBSCRIBE = Script.load("subscribe")


def _keys(pseudonym: str) -> list[str]:
    shard = keys.shard_of_phone(pseudonym)
    return [keys.alert_subscriptions(shard), keys.alert_counts(shard)]


async def subscribe(redis: Any, *, pseudonym: str, subscription: Subscription) -> None:
    """Start a subscription, or change its country, language or channel."""
    await SUBSCRIBE.run(redis, _keys(pseudonym), [pseudonym, subscription.to_record()])


async def unsubscribe(redis: Any, *, pseudonym: str) -> bool:
    """End the phone's subscription (STOP, an erasure, Twilio's 21610); True if it had one."""
    return bool(await SUBSCRIBE.run(redis, _keys(pseudonym), [pseudonym, ""]))


async def subscription_of(redis: Any, *, pseudonym: str) -> Subscription | None:
    raw = await redis.hget(keys.alert_subscriptions(keys.shard_of_phone(pseudonym)), pseudonym)
    return None if raw is None else Subscription.from_record(text_of(raw))


async def audience_size(redis: Any, *, countries: Iterable[str],
                        languages: Iterable[str]) -> int:
    """Subscriptions matching the countries and languages (each empty: all)."""
    wanted_countries, wanted_languages = set(countries), set(languages)
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.hgetall(keys.alert_counts(shard))
        counted = await pipe.execute()
    total = 0
    for counts in counted:
        for raw_key, raw_count in (counts or {}).items():
            country, _, language = text_of(raw_key).partition(" ")
            if (not wanted_countries or country in wanted_countries) and (
                    not wanted_languages or language in wanted_languages):
                total += int(raw_count)
    return total


async def count(redis: Any) -> int:
    """Subscriptions in every shard."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.hlen(keys.alert_subscriptions(shard))
        return sum(int(found) for found in await pipe.execute())


async def every_subscription(redis: Any, shard: int) -> AsyncIterator[tuple[str, Subscription]]:
    """The shard's subscriptions, (pseudonym, subscription), in no order (tests, tools)."""
    async for field, raw in redis.hscan_iter(keys.alert_subscriptions(shard), count=SCAN_COUNT):
        yield text_of(field), Subscription.from_record(text_of(raw))
