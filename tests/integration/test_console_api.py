"""The reads the operators' console needs, through the real app and a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from bot.admin.operators import Role, add_operator, revoke_operator
from bot.cases.model import CaseKind
from bot.engine import sms
from bot.settings import Settings
from bot.store import audit, keys
from tests.integration.admin_support import (
    API,
    T0,
    operator_client,
    return_request,
    seed,
)

pytestmark = pytest.mark.deployments

OTHER_PHONE = "+22376543210"


@pytest.fixture
async def ana(redis: Redis, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An operator's client."""
    async with operator_client(redis, settings, name="ana", role=Role.OPERATOR) as client:
        yield client


async def test_who_am_i_names_the_operator_and_the_console_settings(
    redis: Redis, settings: Settings, ana: httpx.AsyncClient
) -> None:
    me = await ana.get(f"{API}/me")
    assert me.status_code == 200
    assert me.json() == {"name": "ana", "role": "operator",
                         "idle_minutes": settings.console_idle_minutes,
                         "ack_sla_minutes": settings.ack_sla_minutes, "primero": False}
    anonymous = await ana.get(f"{API}/me", headers={"Authorization": "Bearer nope"})
    assert anonymous.status_code == 401


async def test_the_picker_lists_active_operators_only(
    redis: Redis, ana: httpx.AsyncClient
) -> None:
    await add_operator(redis, name="bob", role=Role.SUPERVISOR, now=T0)
    await add_operator(redis, name="gone", role=Role.OPERATOR, now=T0)
    await revoke_operator(redis, name="gone", now=T0)
    found = (await ana.get(f"{API}/assignees")).json()
    assert found == [{"name": "ana", "role": "operator"}, {"name": "bob", "role": "supervisor"}]


async def test_an_unknown_assignee_is_refused_naming_the_field(
    redis: Redis, ana: httpx.AsyncClient
) -> None:
    reference = await seed(redis)
    refused = await ana.patch(f"{API}/cases/{reference}", json={"assignee": "zed"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "assignee"]
    assert await redis.hget(keys.case(reference), "assignee") == ""
    taken = await ana.patch(f"{API}/cases/{reference}", json={"assignee": "ana"})
    assert taken.status_code == 200 and taken.json()["assignee"] == "ana"


@pytest.mark.parametrize("typed", ["70000001", "+223 70 00 00 01", "00223-70-00-00-01",
                                   "70.00.00.01", "+22370000001"])
async def test_a_phone_number_in_any_format_finds_its_cases(
    redis: Redis, ana: httpx.AsyncClient, typed: str
) -> None:
    mine = await seed(redis)
    await seed(redis, return_request(phone=OTHER_PHONE, minutes=1))
    found = await ana.get(f"{API}/search", params={"q": typed})
    assert found.status_code == 200
    assert found.headers["cache-control"] == "no-store"
    body = found.json()
    assert [(hit["reference"], hit["matched_by"]) for hit in body["items"]] == [(mine, "phone")]
    assert "phone" not in body["items"][0]
    assert "phone" in body["searched_by"]


async def test_a_reference_with_or_without_dash_and_a_name_find_their_case(
    redis: Redis, ana: httpx.AsyncClient
) -> None:
    reference = await seed(redis)
    other = await seed(redis, return_request(phone=OTHER_PHONE, minutes=1, name="Moussa Keita"))
    head, tail = reference[:4], reference[4:]
    for typed in (reference, f"{head}-{tail}", f" {head} {tail}"):
        hits = (await ana.get(f"{API}/search", params={"q": typed})).json()["items"]
        assert [(h["reference"], h["matched_by"]) for h in hits] == [(reference, "reference")]
    by_name = (await ana.get(f"{API}/search", params={"q": "keita"})).json()
    assert [(h["reference"], h["matched_by"]) for h in by_name["items"]] == [(other, "name")]
    assert by_name["name_cursor"] is None
    nothing = (await ana.get(f"{API}/search", params={"q": "nobody"})).json()
    assert nothing["items"] == []


async def test_a_search_is_audited_without_what_was_typed(
    redis: Redis, ana: httpx.AsyncClient
) -> None:
    await seed(redis)
    await ana.get(f"{API}/search", params={"q": "+223 70 00 00 01"})
    entries = await redis.xrange(keys.shard_audit(audit.NO_CASE_SHARD))
    searched = [fields for _, fields in entries if fields["action"] == "searched"]
    assert len(searched) == 1 and searched[0]["actor"] == "operator:ana"
    assert "70" not in searched[0]["detail"] and '"phone"' in searched[0]["detail"]


async def test_an_empty_or_long_query_is_refused(ana: httpx.AsyncClient) -> None:
    for q in ("", "x" * 65):
        refused = await ana.get(f"{API}/search", params={"q": q})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "q"]


async def test_a_misspelt_query_parameter_is_a_422_naming_it(ana: httpx.AsyncClient) -> None:
    for path, params in (("/search", {"q": "keita", "curser": "10"}),
                         ("/stats/trends", {"day": "7"})):
        refused = await ana.get(f"{API}{path}", params=params)
        assert refused.status_code == 422, path
        assert refused.json()["detail"][0]["loc"] == ["query", list(params)[-1]], path


async def test_live_changes_carry_new_cases_and_changes_but_not_reads(
    redis: Redis, ana: httpx.AsyncClient
) -> None:
    start = await ana.get(f"{API}/changes")
    assert start.status_code == 200 and start.json()["items"] == []
    cursor = start.json()["cursor"]
    urgent = await seed(redis, return_request(kind=CaseKind.EMERGENCY))
    await ana.get(f"{API}/cases/{urgent}")  # a read: not a change
    await ana.patch(f"{API}/cases/{urgent}", json={"status": "contacted"})
    body = (await ana.get(f"{API}/changes", params={"after": cursor})).json()
    assert [(c["reference"], c["actor"], c["action"]) for c in body["items"]] == [
        (urgent, "migrant", "created"), (urgent, "operator:ana", "status_changed")]
    assert body["items"][0]["detail"] == {"kind": "emergency", "priority": "urgent",
                                          "channel": "ussd"}
    again = (await ana.get(f"{API}/changes", params={"after": body["cursor"]})).json()
    assert again["items"] == [] and again["cursor"] == body["cursor"]
    bad = await ana.get(f"{API}/changes", params={"after": "yesterday"})
    assert bad.status_code == 422


async def test_changes_refuse_a_parameter_they_do_not_take_naming_it(
    ana: httpx.AsyncClient,
) -> None:
    """The cursor is `after` (an audit stream id); `since` or a typo is a 422 naming it,
    not a quiet answer with no change in it."""
    for params in ({"since": "abc"}, {"since": "99999999999999999999999"},
                   {"after": "0-0", "since": "0-0"}):
        refused = await ana.get(f"{API}/changes", params=params)
        assert refused.status_code == 422, params
        assert refused.json()["detail"][0]["loc"] == ["query", "since"], refused.json()
    for after in ("99999999999999999999999", "99999999999999999999-0", "1-2-3", "-1-0"):
        bad = await ana.get(f"{API}/changes", params={"after": after})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "after"]
    last = await ana.get(f"{API}/changes", params={"after": f"{'9' * 19}-{'9' * 19}"})
    assert last.status_code == 200 and last.json()["items"] == []


async def test_canned_replies_come_from_the_flow_in_every_language(
    ana: httpx.AsyncClient,
) -> None:
    replies = (await ana.get(f"{API}/replies")).json()
    assert [r["id"] for r in replies][:2] == ["call_soon", "no_answer"]
    for reply in replies:
        assert set(reply["texts"]) == {"fr", "en", "bm"}
        assert all(text and "{" not in text for text in reply["texts"].values())
        assert sms.encoding(reply["texts"]["bm"]) is sms.Encoding.GSM7  # ɛ → è, ɲ → ny…


async def test_answer_labels_follow_the_flow(ana: httpx.AsyncClient) -> None:
    labels = (await ana.get(f"{API}/flow/answers")).json()
    fields = [label["field"] for label in labels]
    assert fields.index("name") < fields.index("nationality") < fields.index("under_18")
    assert fields.index("under_18") < fields.index("sms_safe")
    under_18 = next(label for label in labels if label["field"] == "under_18")
    assert under_18["values"]["yes"] == {"fr": "Oui", "en": "Yes", "bm": "Ɔwɔ"}
    topic = next(label for label in labels if label["field"] == "topic")
    assert "#" not in topic["label"]["en"] and topic["label"]["en"].startswith("What is it")


async def test_a_list_says_why_a_case_is_urgent(redis: Redis, ana: httpx.AsyncClient) -> None:
    minor = await seed(redis, return_request(under_18="yes", pregnant="yes"))
    emergency = await seed(redis, return_request(kind=CaseKind.EMERGENCY, minutes=1))
    items = {i["reference"]: i for i in (await ana.get(f"{API}/cases")).json()["items"]}
    assert items[minor]["priority_reasons"] == ["under_18"]
    assert items[emergency]["priority_reasons"] == ["emergency"]
    await ana.patch(f"{API}/cases/{minor}", json={"priority": "normal"})
    items = {i["reference"]: i for i in (await ana.get(f"{API}/cases")).json()["items"]}
    assert items[minor]["priority_reasons"] == ["operator"]
    assert "answers" not in items[minor]


async def test_escalating_again_to_the_same_level_is_refused(
    redis: Redis, ana: httpx.AsyncClient
) -> None:
    reference = await seed(redis)
    first = await ana.post(f"{API}/cases/{reference}/escalate", json={"reason": "r", "level": 1})
    assert first.status_code == 200
    again = await ana.post(f"{API}/cases/{reference}/escalate", json={"reason": "r", "level": 1})
    assert again.status_code == 409 and "level 1" in again.json()["detail"]
    higher = await ana.post(f"{API}/cases/{reference}/escalate", json={"reason": "r", "level": 2})
    assert higher.status_code == 200



async def test_trends_count_cases_per_day_and_kind_and_time_to_first_contact(
    redis: Redis, ana: httpx.AsyncClient
) -> None:
    first = await seed(redis)
    await seed(redis, return_request(kind=CaseKind.EMERGENCY, minutes=30))
    await ana.get(f"{API}/cases/{first}")  # reads are not counted
    await ana.patch(f"{API}/cases/{first}", json={"status": "contacted"})
    found = await ana.get(f"{API}/stats/trends", params={"days": 7})
    assert found.status_code == 200
    body = found.json()
    assert body["by_day_kind"] == {"2025-03-01": {"return_request": 1, "emergency": 1}}
    assert body["first_contacts"] == 1 and body["complete"] is True
    assert body["median_first_contact_minutes"] > 60 * 24 * 365  # T0 was in 2025
    too_long = await ana.get(f"{API}/stats/trends", params={"days": 91})
    assert too_long.status_code == 422
