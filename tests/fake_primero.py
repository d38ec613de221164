"""A local fake of Primero's API v2 (tokens and cases) for tests, as Primero documents it.

A real HTTP server on a loopback port (tests/fake_rest.py: a worker in a subprocess
reaches it too), pointed at through `PRIMERO_URL`. What it does,
from Primero's docs (doc/api/tokens/post.md, doc/api/cases/post.md) and code
(Api::V2::Concerns::Record#create, ErrorService, RecordJsonValidatorService):

- `POST /api/v2/tokens` with `{"user": {"user_name", "password"}}`: 200 and the JWT
  in the `Authorization` response header; wrong credentials: 401.
- every other call needs `Authorization: Bearer <token>` of a token it issued and
  did not revoke (`revoke_tokens`), younger than 60 minutes; else 401.
- `POST /api/v2/cases`: `{"data": {...}}`; a field the configuration does not know,
  a protection concern outside its lookup, a non-boolean consent or a malformed
  `id` is a 422 with `detail`; a client-given `id` is answered 204 (no body), an
  `id` it holds already 409; without `id`, 200 with the case and its
  `case_id_display` (`client_id_status = 200`: the same for a client-given id).
- `GET /api/v2/cases/{id}[?fields=a,b]`: 200 with the case (those fields), or 404.

Planned answers (`plan`) replace the next case creations' answers: a failure
(503 with `Retry-After`, say) creates nothing; `Revoke` ends every session and
answers 401; `Held` creates the case and answers only once released; `Late`
creates it and answers too late.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from tests.fake_rest import (
    Answer,
    FakeRest,
    Held,
    Late,
    Normal,
    Request,
    running,
    wait_as_planned,
)

USER = "helpline-referrals"
PASSWORD = "fake-primero-password-7c1e"
TOKEN_LIFETIME_SECONDS = 60 * 60
MODULES = frozenset({"primeromodule-cp", "primeromodule-gbv"})
# Fields of the default configuration's case forms that a referral may use (a subset).
TEXT_FIELDS = frozenset({"name", "name_first", "name_last", "other_agency_id",
                         "other_agency_name", "address_current", "protection_concerns_other",
                         "telephone_current", "occupation"})
TICK_BOXES = frozenset({"consent_for_services", "disclosure_other_orgs"})
PROTECTION_CONCERNS = frozenset({
    "sexually_exploited", "gbv_survivor", "trafficked_smuggled", "statelessness",
    "arrested_detained", "migrant", "disabled", "serious_health_issue", "refugee", "caafag",
    "street_child", "child_mother", "physically_or_mentally_abused",
    "living_with_vulnerable_person", "worst_forms_of_child_labor", "child_headed_household",
    "mentally_distressed", "other"})
UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
CASES = "/api/v2/cases"


@dataclass(frozen=True)
class Fail:
    """Answer `status` without creating anything (`retry_after`: its header)."""

    status: int = 503
    retry_after: str | None = None
    message: str = "Service Unavailable"
    detail: str | None = None


@dataclass(frozen=True)
class Revoke:
    """Revoke every token as the request arrives, and answer it 401 (a session ended)."""


Plan = Normal | Fail | Late | Held | Revoke


def errors(status: int, resource: str, message: str, detail: object = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "resource": resource, "message": message}
    if detail is not None:
        error["detail"] = detail
    return {"errors": [error]}


class FakePrimero(FakeRest[Plan]):
    """`plan`: how the next case creations are answered, in order."""

    content_type = "application/json; charset=utf-8"

    def __init__(self) -> None:
        super().__init__()
        self.cases: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, float] = {}
        self._read_plans: list[Fail] = []
        self.client_id_status = 204
        """How a creation with a client-given id is answered (Primero: 204, no body)."""

    # --- what tests use ------------------------------------------------------------

    def plan_reads(self, *plans: Fail) -> None:
        """Answer the next case reads (GET) with these failures."""
        with self.lock:
            self._read_plans.extend(plans)

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused from now on (a session ended)."""
        with self.lock:
            self._tokens.clear()

    def calls(self, method: str, path_prefix: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests
                    if r.method == method and r.path.startswith(path_prefix)]

    @property
    def sign_ins(self) -> list[Request]:
        return self.calls("POST", "/api/v2/tokens")

    @property
    def creates(self) -> list[Request]:
        return [r for r in self.calls("POST", CASES) if r.path == CASES]

    @property
    def reads(self) -> list[Request]:
        return self.calls("GET", CASES + "/")

    # --- the API ---------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        answer, plan = self.handle(request)
        wait_as_planned(plan)
        return answer

    def handle(self, request: Request) -> tuple[Answer, Plan]:
        if request.method == "POST" and request.path == "/api/v2/tokens":
            return self._sign_in(request), Normal()
        if not self._authorised(request):
            return Answer(401, errors(401, request.path, "Unauthorized")), Normal()
        if request.method == "POST" and request.path == CASES:
            plan = self._next_plan()
            if isinstance(plan, Fail):
                return self._failure(plan, request.path), plan
            if isinstance(plan, Revoke):
                self.revoke_tokens()
                return Answer(401, errors(401, request.path, "Unauthorized")), plan
            return self._create(request), plan
        if request.method == "GET" and request.path.startswith(CASES + "/"):
            with self.lock:
                read_plan = self._read_plans.pop(0) if self._read_plans else None
            if read_plan is not None:
                return self._failure(read_plan, request.path), Normal()
            return self._show(request), Normal()
        return Answer(404, errors(404, request.path, "Not Found")), Normal()

    def _failure(self, plan: Fail, path: str) -> Answer:
        headers = {"Retry-After": plan.retry_after} if plan.retry_after else {}
        return Answer(plan.status, errors(plan.status, path, plan.message, plan.detail), headers)

    def _sign_in(self, request: Request) -> Answer:
        try:
            user = request.json()["user"]
            right = user["user_name"] == USER and user["password"] == PASSWORD
        except (ValueError, KeyError, TypeError):
            right = False
        if not right:
            return Answer(401, {"error": "Invalid User name or password."})
        token = ".".join(secrets.token_urlsafe(n) for n in (12, 48, 32))
        with self.lock:
            self._tokens[token] = time.monotonic()
        return Answer(200, {"id": 7, "user_name": USER},
                      {"Authorization": f"Bearer {token}"})

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self.lock:
            issued = self._tokens.get(token)
        return (scheme == "Bearer" and issued is not None
                and time.monotonic() - issued < TOKEN_LIFETIME_SECONDS)

    def _invalid(self, data: Any) -> tuple[str, object] | None:
        """Why Primero's JSON validation refuses `data`, if it does."""
        if not isinstance(data, dict):
            return "param is missing or the value is empty: data", None
        if data.get("module_id") not in MODULES:
            return "Invalid Record JSON", ["module_id"]
        unknown = sorted(set(data) - TEXT_FIELDS - TICK_BOXES
                         - {"id", "module_id", "protection_concerns"})
        wrong = [name for name in TEXT_FIELDS & set(data) if not isinstance(data[name], str)]
        wrong += [name for name in TICK_BOXES & set(data) if not isinstance(data[name], bool)]
        concerns = data.get("protection_concerns", [])
        if not isinstance(concerns, list) or not set(concerns) <= PROTECTION_CONCERNS:
            wrong.append("protection_concerns")
        if "id" in data and not (isinstance(data["id"], str) and UUID.match(data["id"])):
            wrong.append("id")
        if unknown or wrong:
            return "Invalid Record JSON", sorted(unknown + wrong)
        return None

    def _create(self, request: Request) -> Answer:
        try:
            data = request.json().get("data")
        except (ValueError, AttributeError):
            data = None
        invalid = self._invalid(data)
        if invalid is not None:
            return Answer(422, errors(422, CASES, *invalid))
        given = data.get("id")
        with self.lock:
            if given in self.cases:
                return Answer(409, errors(409, CASES,
                                          "Conflict: A record with this id already exists"))
            case_id = given or str(uuid.uuid4())
            case = {**data, "id": case_id, "case_id_display": case_id.replace("-", "")[-7:],
                    "owned_by": USER, "record_state": True}
            self.cases[case_id] = case
        if given and self.client_id_status == 204:
            return Answer(204)
        return Answer(200, {"data": case})

    def _show(self, request: Request) -> Answer:
        case_id = request.path[len(CASES) + 1:]
        with self.lock:
            case = self.cases.get(case_id)
        if case is None:
            return Answer(404, errors(404, request.path, "Not Found"))
        wanted = [f for f in request.query.get("fields", "").split(",") if f]
        shown = {k: v for k, v in case.items() if not wanted or k in wanted or k == "id"}
        return Answer(200, {"data": shown})


def fake_primero() -> AbstractContextManager[FakePrimero]:
    return running(FakePrimero())
