"""Helpers of the broadcast tests: subscribers seeded through the store, operators."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from bot import privacy
from bot.admin import operators
from bot.admin.operators import Role
from bot.outreach.subscriptions import AlertChannel, Subscription
from bot.store import subscriptions

API = "/admin/api/v1"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TEXTS = {
    "fr": "Canicule sur la route d'Agadez: buvez, reposez-vous à l'ombre.",
    "en": "Heat wave on the Agadez route: drink, rest in the shade.",
    "bm": "Funteni ba Agadez sira kan: ji min, i lafiɲɛ suma la.",
}


def phone_of(number: int) -> str:
    return f"+2237700{number:04d}"


async def seed_subscribers(redis: Redis, pii_key: bytes, plan: list[tuple[str, str]], *,
                           first: int = 0, channel: AlertChannel = AlertChannel.SMS
                           ) -> list[str]:
    """One subscriber per (country, language) of `plan`; their numbers."""
    phones = []
    for offset, (country, language) in enumerate(plan):
        phone = phone_of(first + offset)
        await subscriptions.subscribe(
            redis, pseudonym=privacy.pseudonym(phone, pii_key),
            subscription=Subscription(country, language, channel, int(T0.timestamp()),
                                      "2026-11-29", phone))
        phones.append(phone)
    return phones


async def supervisors(redis: Redis) -> dict[str, str]:
    """Tokens of two supervisors, an admin and an operator."""
    return {
        "sup-a": await operators.add_operator(redis, name="sup-a", role=Role.SUPERVISOR, now=T0),
        "sup-b": await operators.add_operator(redis, name="sup-b", role=Role.SUPERVISOR, now=T0),
        "admin-1": await operators.add_operator(redis, name="admin-1", role=Role.ADMIN, now=T0),
        "op-1": await operators.add_operator(redis, name="op-1", role=Role.OPERATOR, now=T0),
    }
