"""What a referral sends to Primero: one of our cases as a Primero case (pure, no I/O).

Field names and values are those of Primero's default child-protection
configuration (forms `basic_identity`, `protection_concerns`,
`data_confidentiality`; lookup `lookup-protection-concerns`). Primero refuses a
field it does not know (422), so only those are sent, and only the ones we have:
docs/primero.md lists them, one by one, with what is left out and why.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from bot.cases.model import YES, Case, CaseKind

# Fixed for ever: the Primero ids of all our referrals derive from it.
PRIMERO_NAMESPACE = uuid.UUID("fc28c191-6782-451c-b13e-e9c04855512b")

ALWAYS_CONCERN = "migrant"
"""Everyone who reaches the helpline is a migrant (Primero's concern `migrant`)."""
CONCERNS_OF_ANSWERS: Mapping[str, str] = {
    "medical": "serious_health_issue",
    "disability": "disabled",
}
"""A yes to one of our questions → the Primero protection concern it says."""
CONCERNS_OF_TOPICS: Mapping[str, str] = {
    "trafficking": "trafficked_smuggled",
    "violence": "physically_or_mentally_abused",
    "health": "serious_health_issue",
}
"""A call-back's topic → the Primero protection concern it says."""
OTHER = "other"
OTHER_CONCERNS: Mapping[str, str] = {
    "trafficking_or_violence": "violence, trafficking or forced work (one question: "
                               "which of them is not known)",
    "under_18": "under 18",
    "pregnant": "pregnant",
}
"""A yes with no Primero concern of its own: concern `other`, said in words."""


def primero_case_id(reference: str, org_name: str) -> str:
    """The Primero id (`data.id`) of our case: a UUID derived from the referring agency
    and the reference, the same on every try, so that a repeat is Primero's 409."""
    return str(uuid.uuid5(PRIMERO_NAMESPACE, f"{org_name.strip()}/{reference}"))


def protection_concerns(kind: CaseKind, answers: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Primero's concern ids, and the words of those it has no id for (in `other`)."""
    concerns = [ALWAYS_CONCERN]
    words: list[str] = []
    for field, concern in CONCERNS_OF_ANSWERS.items():
        if answers.get(field) == YES and concern not in concerns:
            concerns.append(concern)
    if kind is CaseKind.CALLBACK:
        topic_concern = CONCERNS_OF_TOPICS.get(answers.get("topic", ""))
        if topic_concern and topic_concern not in concerns:
            concerns.append(topic_concern)
    for field, said in OTHER_CONCERNS.items():
        if answers.get(field) == YES:
            words.append(said)
    if words:
        concerns.append(OTHER)
    return concerns, words


def current_location(answers: Mapping[str, str]) -> str | None:
    """Where the migrant said they are now, as they typed it (town, country)."""
    if answers.get("location"):  # an emergency's optional answer
        return answers["location"].strip() or None
    place = ", ".join(answers[field].strip() for field in ("city", "country")
                      if answers.get(field, "").strip())
    return place or None


def primero_case(case: Case, *, module_id: str, org_name: str) -> dict[str, object]:
    """The body of `POST /api/v2/cases` for `case` (personal fields present: not erased)."""
    answers = case.answers
    concerns, words = protection_concerns(case.kind, answers)
    data: dict[str, object] = {
        "id": primero_case_id(case.reference, org_name),
        "module_id": module_id,
        "other_agency_id": case.reference,
        "other_agency_name": org_name.strip(),
    }
    if answers.get("name", "").strip():
        data["name"] = answers["name"].strip()
    location = current_location(answers)
    if location:
        data["address_current"] = location
    data["protection_concerns"] = concerns
    if words:
        data["protection_concerns_other"] = "; ".join(words)
    data["consent_for_services"] = True
    data["disclosure_other_orgs"] = True
    return {"data": data}
