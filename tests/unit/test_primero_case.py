"""What a referral sends to Primero (bot.cases.primero_case) and how Primero's answers read."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.cases.model import Case, CaseKind, CaseStatus, Priority
from bot.cases.primero_case import primero_case, primero_case_id, protection_concerns
from bot.jobs.primero_api import failure_of, primero_words, retry_after_seconds
from bot.settings import Settings
from tests.fake_primero import PROTECTION_CONCERNS, TEXT_FIELDS, TICK_BOXES

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
YES_NO = st.sampled_from(["yes", "no"])
ANSWERS = st.fixed_dictionaries({}, optional={
    "name": st.text(max_size=30), "city": st.text(max_size=20), "country": st.text(max_size=20),
    "location": st.text(max_size=20), "topic": st.sampled_from(["return", "trafficking",
                                                                 "violence", "health"]),
    **{field: YES_NO for field in ("under_18", "medical", "pregnant", "disability",
                                   "trafficking_or_violence", "sms_safe", "travel_document")},
})


def case_of(kind: CaseKind, answers: dict[str, str]) -> Case:
    return Case(reference="12345671", kind=kind, status=CaseStatus.NEW,
                priority=Priority.NORMAL, escalated=False, escalation_level=0, assignee=None,
                phone="+22376000001", language="fr", channel="ussd", answers=answers,
                consent=None, created_at=NOW, updated_at=NOW)


def test_the_id_is_the_same_for_a_reference_and_differs_between_references() -> None:
    first = primero_case_id("12345671", "Ligne d'aide Mali")
    assert UUID.match(first)
    assert first == primero_case_id("12345671", " Ligne d'aide Mali ")
    assert first != primero_case_id("12345689", "Ligne d'aide Mali")
    assert first != primero_case_id("12345671", "Another helpline")


@given(kind=st.sampled_from(list(CaseKind)), answers=ANSWERS)
def test_only_fields_and_values_primero_knows_are_sent(kind: CaseKind,
                                                       answers: dict[str, str]) -> None:
    data = primero_case(case_of(kind, answers), module_id="primeromodule-cp",
                        org_name="Helpline")["data"]
    assert isinstance(data, dict)
    assert set(data) <= TEXT_FIELDS | TICK_BOXES | {"id", "module_id", "protection_concerns"}
    assert set(data["protection_concerns"]) <= PROTECTION_CONCERNS
    assert ("other" in data["protection_concerns"]) == ("protection_concerns_other" in data)
    assert data["consent_for_services"] is True and data["disclosure_other_orgs"] is True
    # Least data: never the phone number, the nationality or whether SMS is safe.
    assert "+22376000001" not in json.dumps(data)
    assert not {"telephone_current", "nationality", "sms_safe"} & set(data)


def test_the_answers_become_concerns_and_words() -> None:
    concerns, words = protection_concerns(CaseKind.RETURN_REQUEST, {
        "under_18": "yes", "medical": "yes", "pregnant": "no", "disability": "no",
        "trafficking_or_violence": "yes"})
    assert concerns == ["migrant", "serious_health_issue", "other"]
    assert words == ["violence, trafficking or forced work (one question: which of them is "
                     "not known)", "under 18"]
    assert protection_concerns(CaseKind.CALLBACK, {"topic": "trafficking"}) == (
        ["migrant", "trafficked_smuggled"], [])
    assert protection_concerns(CaseKind.EMERGENCY, {}) == (["migrant"], [])


@pytest.mark.parametrize(("header", "seconds"), [
    ("1", 1.0), ("0.5", 0.5), ("-3", 0.0), ("86400", 3600.0), ("", None), (None, None),
    ("soon", None), ("Mon, 02 Mar 2026 08:00:30 GMT", 30.0)])
def test_retry_after_in_seconds_or_a_date(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


def test_primeros_words_for_a_refusal() -> None:
    refused = httpx.Response(422, json={"errors": [
        {"code": 422, "resource": "/api/v2/cases", "message": "Invalid Record JSON",
         "detail": ["name", "age"]},
        {"code": 422, "message": "Please enter the date in a valid format",
         "detail": "registration_date"}]})
    assert primero_words(refused) == ("Invalid Record JSON (name, age); Please enter the date "
                                      "in a valid format (registration_date)")
    failed = failure_of(refused)
    assert not failed.retry and failed.reason.startswith("Primero refused the case: Invalid")
    busy = failure_of(httpx.Response(503, headers={"Retry-After": "7"}, text="<html>"))
    assert busy.retry and busy.retry_after == 7.0 and busy.reason == "Primero answered 503"
    assert failure_of(httpx.Response(429)).retry
    forbidden = failure_of(httpx.Response(403, json={"errors": [{"message": "Forbidden"}]}))
    assert (forbidden.retry, forbidden.reason) == (False, "Primero refused (403): Forbidden")


def test_primero_settings_all_three_or_none() -> None:
    assert not Settings().primero_configured
    with pytest.raises(ValidationError, match="PRIMERO_PASSWORD missing"):
        Settings(primero_url="https://p.example", primero_user="u")
    with pytest.raises(ValidationError, match="must start with https://"):
        Settings(primero_url="p.example", primero_user="u", primero_password="p",
                 org_name="Org")  # type: ignore[arg-type]
    configured = Settings(primero_url="https://p.example", primero_user="u",
                          primero_password="p", org_name="Org")  # type: ignore[arg-type]
    assert configured.primero_configured and configured.primero_module == "primeromodule-cp"
    assert "p.example" in repr(configured) and "'p'" not in repr(configured)
