"""The planner alone: a phone's turns computed from its stored state, no Redis.

The state a plan writes is fed to the next message as the store would return it
(`PhoneState.after`), so a whole walk runs here; time, the lease token and the
references a creation draws are passed in, so the same inputs give the same plan.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.engine.plan import InboundMessage, Outcome, Plan, Planner, Route
from bot.engine.render import Limits
from bot.engine.session import (
    DELETE,
    KEEP,
    NO_EXPIRY,
    NOTHING_STORED,
    CaseView,
    PhoneState,
    Reads,
    Ttls,
)
from bot.types import Channel
from tests.factories import NOW, default_flow

WALK = ["1", "2", "1", "Awa Diarra", "Mali", "Niger", "Agadez", "2", "2", "2", "1", "2", "1", "1",
        "1", "1"]
"""French, return request, consent, the answers, confirmation (as bench/webhooks.py)."""
PHONE = "+22376000001"
REFERENCES = ["10000004", "10000012", "10000020", "10000036"]
"""Valid references (Damm check digit), as a creation would draw them."""


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner(default_flow(),
                   limits={channel: Limits(channel) for channel in Channel},
                   ttls={channel: Ttls(session=300, profile=86_400, draft=3_600)
                         for channel in Channel})


class Drawer:
    """References drawn on demand, counted: only a creation draws."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> list[str]:
        self.calls += 1
        return list(REFERENCES)


def hop(texts: list[str], session: str = "s1") -> InboundMessage:
    text = "*".join(texts)
    return InboundMessage(Channel.USSD, PHONE, text, message_id=f"{session}\x1f{text}",
                          ussd_session=session)


def planned(planner: Planner, message: InboundMessage, state: PhoneState, draw: Drawer,
            token: str = "t0") -> Plan:
    """As the conversation does: plan, read what the plan asks for (here: nothing open),
    plan again."""
    digest = f"{abs(hash(message.message_id)) % 16**10:010x}"
    plan = planner.plan(message, state, digest=digest, token=token, now=NOW, draw=draw)
    if plan.open_request_needed:
        plan = planner.plan(message, state, digest=digest, token=token, now=NOW, draw=draw,
                            reads=Reads(open_known=True))
    return plan


def test_a_whole_return_request_plans_one_step_route_a_hop_and_one_creation(
        planner: Planner) -> None:
    draw = Drawer()
    state = NOTHING_STORED
    plans = []
    for count in range(len(WALK) + 1):
        plan = planned(planner, hop(WALK[:count]), state, draw)
        assert plan.commit is not None and not plan.needs_read
        plans.append(plan)
        state = state.after(plan.commit, plan.decoded)
    assert [plan.route for plan in plans] == [Route.STEP] * len(plans)
    assert plans[0].reply.text.startswith("Bienvenue")
    last = plans[-1]
    assert draw.calls == 1 and last.created == [REFERENCES[0]]
    (creation, candidates), = last.creations
    assert candidates == REFERENCES
    assert creation.answers and creation.consent_at == NOW.isoformat(timespec="seconds")
    assert last.reply.end and "1000-0004" in last.reply.text.replace(" ", "")
    assert last.commit is not None and last.commit.session_json == DELETE


def test_the_menu_hop_asks_for_the_open_request_before_it_writes(planner: Planner) -> None:
    draw = Drawer()
    state = NOTHING_STORED
    for count in range(2):
        plan = planned(planner, hop(WALK[:count]), state, draw)
        assert plan.commit is not None
        state = state.after(plan.commit, plan.decoded)
    first = planner.plan(hop(WALK[:2]), state, digest="d" * 10, token="t", now=NOW, draw=draw)
    assert first.open_request_needed and first.needs_read
    open_one = CaseView(reference="10000048", kind="return_request", status="new",
                        is_callers=True, can_withdraw=True)
    again = planner.plan(hop(WALK[:2]), state, digest="d" * 10, token="t", now=NOW, draw=draw,
                         reads=Reads(open_request=open_one, open_known=True))
    assert not again.needs_read and again.route is Route.STEP
    assert "1000-0048" in again.reply.text.replace(" ", "")


def test_the_same_inputs_give_the_same_plan(planner: Planner) -> None:
    state = NOTHING_STORED
    for count in range(len(WALK) + 1):
        one = planned(planner, hop(WALK[:count]), state, Drawer())
        two = planned(planner, hop(WALK[:count]), state, Drawer())
        assert one.commit == two.commit and one.reply == two.reply and one.route is two.route
        assert one.commit is not None
        state = state.after(one.commit, one.decoded)


def test_the_clock_passed_in_is_the_one_a_draft_keeps(planner: Planner) -> None:
    state = NOTHING_STORED
    later = NOW + timedelta(days=3)
    for count in range(4):  # up to the consent
        message = hop(WALK[:count])
        plan = planner.plan(message, state, digest=f"{count:010x}", token="t", now=later,
                            draw=Drawer(), reads=Reads(open_known=True))
        assert plan.commit is not None
        state = state.after(plan.commit, plan.decoded)
    assert state.session is not None and later.isoformat(timespec="seconds") in state.session


def test_a_replayed_hop_writes_nothing_and_says_the_screen_again(planner: Planner) -> None:
    draw = Drawer()
    state = NOTHING_STORED
    for count in range(3):
        plan = planned(planner, hop(WALK[:count]), state, draw)
        assert plan.commit is not None
        state = state.after(plan.commit, plan.decoded)
    shown = plan.reply.text
    replay = planned(planner, hop(WALK[:2]), state, draw)
    assert replay.route is Route.NOTHING and replay.commit is None
    assert replay.outcome is Outcome.REPEATED and replay.reply.text == shown
    # from the stored JSON alone (another process wrote it): the same
    stored = PhoneState(state.session, state.profile, state.draft, state.receipts)
    assert planned(planner, hop(WALK[:2]), stored, draw).reply.text == shown


def test_a_typed_reference_is_read_first_then_its_status_said(planner: Planner) -> None:
    sms = InboundMessage(Channel.SMS, PHONE, "SUIVI 1000-0004", message_id="SM1")
    first = planner.plan(sms, NOTHING_STORED, digest="a" * 10, token="t", now=NOW,
                         draw=Drawer())
    assert first.lookup_needed == "10000004" and first.commit is None
    found = CaseView(reference="10000004", kind="return_request", status="new",
                     is_callers=True, can_withdraw=True)
    plan = planner.plan(sms, NOTHING_STORED, digest="a" * 10, token="t", now=NOW,
                        draw=Drawer(), reads=Reads(looked_up="10000004", lookup=found))
    assert not plan.needs_read and plan.route is Route.STEP
    assert "1000-0004" in plan.reply.text.replace(" ", "")
    unknown = planner.plan(sms, NOTHING_STORED, digest="a" * 10, token="t", now=NOW,
                           draw=Drawer(), reads=Reads(looked_up="10000004"))
    assert not unknown.needs_read and unknown.route is Route.STEP  # read once, not again
    assert unknown.reply.text != plan.reply.text


def test_what_the_phone_was_never_told_takes_the_effects_route(planner: Planner) -> None:
    state = PhoneState(unseen=" key-1 key-1 key-2")
    plan = planned(planner, hop([]), state, Drawer())
    assert plan.route is Route.EFFECTS and plan.unseen == ["key-1", "key-2"]
    assert plan.commit is not None and plan.commit.unseen == DELETE


def test_stop_keeps_the_opt_out_without_expiry(planner: Planner) -> None:
    sms = InboundMessage(Channel.SMS, PHONE, "STOP", message_id="SM2")
    plan = planner.plan(sms, NOTHING_STORED, digest="b" * 10, token="t", now=NOW,
                        draw=Drawer())
    assert plan.commit is not None and plan.route is Route.STEP
    assert plan.commit.profile_json != KEEP and plan.commit.profile_ttl == NO_EXPIRY
