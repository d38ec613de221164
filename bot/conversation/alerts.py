"""A turn's change to the phone's alert subscription, carried out by the conversation loop.

Written before the turn's state (the step's one script): the migrant is told
"subscribed" only once the subscription exists, and STOP ends it before STOP is
confirmed. A hop retried after a failure in between writes it again (the write
is idempotent); a turn that changes nothing costs nothing.
"""

from __future__ import annotations

from typing import Any

from bot.engine.plan import Plan
from bot.store import subscriptions


async def apply_alerts(redis: Any, pseudonym: str, planned: Plan) -> None:
    if planned.subscribe is not None:
        await subscriptions.subscribe(redis, pseudonym=pseudonym,
                                      subscription=planned.subscribe)
    elif planned.unsubscribe:
        await subscriptions.unsubscribe(redis, pseudonym=pseudonym)
