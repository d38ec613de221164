"""Reads the operators' console needs: who am I, the assignee picker, search,
live changes, canned replies and the flow's labels for answers (docs/spec.md §7).

Every route is role-checked like the rest of the admin API; a search is audited
(it can tell whether a phone has cases) and answers `Cache-Control: no-store`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from bot.admin import operators
from bot.cases import service as case_service
from bot.cases.references import is_valid as is_valid_reference
from bot.engine.render import fill
from bot.engine.spelling import spelled
from bot.flows.checked import load_checked
from bot.flows.model import Flow, StateKind
from bot.privacy import normalise_phone, pii_key, pseudonym
from bot.settings import Settings
from bot.store import audit, case_queries, console_reads
from bot.types import Channel

from .console_schemas import (
    AnswerLabel,
    Assignee,
    CannedReply,
    ChangeOut,
    ChangesOut,
    ChangesQuery,
    MatchedBy,
    Me,
    SearchHit,
    SearchQuery,
    SearchResult,
    TrendsOut,
    TrendsQuery,
)
from .deps import AnyOperator, NowDep, RedisDep, actor
from .routing import AuthorisedRoute
from .schemas import CaseSummary
from .trends import trends

router = APIRouter(tags=["console"], route_class=AuthorisedRoute)

Responses = dict[int | str, dict[str, Any]]
_AUTH: Responses = {
    401: {"description": "Missing, unknown or revoked token"},
    403: {"description": "The token's role may not do this"},
    429: {"description": "Too many wrong tokens from this client; `Retry-After` says when"},
    503: {"description": "The store is unreachable; `Retry-After` says when to try again"},
}
_INVALID: Responses = {422: {"description": "Invalid input; `detail[].loc` names the field"}}
NO_STORE = {"Cache-Control": "no-store"}
# Canned replies are the flow's texts named `reply_<id>` (flows/helpline.yaml).
REPLY_PREFIX = "reply_"
SEARCH_PAGE = 50
MIN_PHONE_DIGITS = 8
# Fields a search reads for each hit: the summary, and answers for the priority reason.
HIT_FIELDS = (*case_queries.SUMMARY_FIELDS, "answers")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _flow(request: Request) -> Flow:
    settings = _settings(request)
    return load_checked(settings.flow, settings.ussd_max_chars).flow


@router.get("/me", response_model=Me, responses=_AUTH)
async def who_am_i(request: Request, operator: AnyOperator) -> Me:
    """The operator holding this token, and the console's settings."""
    settings = _settings(request)
    return Me(
        name=operator.name,
        role=operator.role,
        idle_minutes=settings.console_idle_minutes,
        ack_sla_minutes=settings.ack_sla_minutes,
        primero=settings.primero_configured,
    )


@router.get("/assignees", response_model=list[Assignee], responses=_AUTH)
async def assignees(redis: RedisDep, _: AnyOperator) -> list[Assignee]:
    """Active operators a case can be assigned to (the console's picker), by name."""
    return [
        Assignee(name=o.name, role=o.role)
        for o in await operators.list_operators(redis)
        if o.active
    ]


def _phone_of(q: str, region: str) -> str | None:
    """`q` as an E.164 number if it reads as one (8 digits or more, any punctuation)."""
    digits = sum(c.isdigit() for c in q)
    if digits < MIN_PHONE_DIGITS or any(c.isalpha() for c in q):
        return None
    return normalise_phone(q, region)


@router.get("/search", response_model=SearchResult, responses=_AUTH | _INVALID)
async def search(
    request: Request,
    response: Response,
    redis: RedisDep,
    now: NowDep,
    operator: AnyOperator,
    query: Annotated[SearchQuery, Query()],
) -> SearchResult:
    """Find cases by reference (with or without `-`), phone number (any format, normalised
    as the webhooks do) or a fragment of the migrant's name.

    A phone number is found through the phone's pseudonym index (no walk). A name is
    matched by walking the cases in triage order, at most 2,000 a call: when
    `name_cursor` is set, call again with it to search further. The search is audited
    (what it was read as, never the query).
    """
    response.headers.update(NO_STORE)
    settings = _settings(request)
    text, cursor = query.q.strip(), query.cursor
    compact = "".join(c for c in text if c not in "- .")
    hits: dict[str, SearchHit] = {}
    searched: list[MatchedBy] = []

    def keep(rows: list[dict[str, str]], by: MatchedBy) -> None:
        for row in rows:
            if row["reference"] not in hits:
                summary = CaseSummary.from_row(row)
                hits[row["reference"]] = SearchHit(**summary.model_dump(), matched_by=by)

    if cursor is None and compact.isascii() and compact.isdigit() and len(compact) == 8:
        searched.append(MatchedBy.REFERENCE)
        if is_valid_reference(compact):
            found = await case_queries.case_summary(redis, compact, HIT_FIELDS)
            keep([found] if found else [], MatchedBy.REFERENCE)
    phone = _phone_of(text, settings.default_region) if cursor is None else None
    if phone is not None:
        searched.append(MatchedBy.PHONE)
        rows = await console_reads.cases_of_phone(
            redis, pseudonym(phone, pii_key(settings)), HIT_FIELDS
        )
        keep(rows, MatchedBy.PHONE)
    name_cursor = None
    if not any(c.isdigit() for c in text):
        searched.append(MatchedBy.NAME)
        page = await case_queries.page_of_cases(
            redis,
            case_filter=case_queries.CaseFilter(name_fragment=text.lower()),
            limit=SEARCH_PAGE,
            cursor=cursor,
            fields=HIT_FIELDS,
        )
        keep(page.items, MatchedBy.NAME)
        name_cursor = page.next_cursor
    await audit.record(
        redis,
        reference=audit.NO_CASE,
        actor=actor(operator),
        action="searched",
        at=now,
        detail={"by": [str(by) for by in searched], "found": len(hits)},
    )
    return SearchResult(items=list(hits.values()), searched_by=searched, name_cursor=name_cursor)


@router.get("/changes", response_model=ChangesOut, responses=_AUTH | _INVALID)
async def changes(
    redis: RedisDep,
    _: AnyOperator,
    query: Annotated[ChangesQuery, Query()],
) -> ChangesOut:
    """Case events since `after` (created, status changed, assigned, escalated…), for a
    live queue polled every few seconds; without `after`, only the cursor to start from.
    Reads and exports are left out; no personal data is in an event."""
    after = query.after
    if after is None:
        return ChangesOut(cursor=await console_reads.latest_change_id(redis), items=[])
    found = await console_reads.changes_after(redis, after, quiet=case_service.QUIET_ACTIONS,
                                              shown=case_service.SHOWN_DETAIL)
    return ChangesOut(
        cursor=found.cursor,
        items=[
            ChangeOut(
                reference=c.reference, actor=c.actor, action=c.action, at=c.at, detail=c.detail
            )
            for c in found.items
        ],
    )


@router.get("/stats/trends", response_model=TrendsOut, responses=_AUTH | _INVALID)
async def stats_trends(
    redis: RedisDep,
    now: NowDep,
    _: AnyOperator,
    query: Annotated[TrendsQuery, Query()],
) -> TrendsOut:
    """Cases per day and kind, and the median time to first contact, over the last `days`
    days (from the case events; no personal data)."""
    found = await trends(redis, now=now, days=query.days)
    return TrendsOut(
        days=found.days,
        by_day_kind=found.by_day_kind,
        median_first_contact_minutes=found.median_first_contact_minutes,
        first_contacts=found.first_contacts,
        complete=found.complete,
    )


def as_sms(flow: Flow, name: str, language: str) -> str:
    filled = fill(flow, flow.text(name, language), language, {}, {})
    return spelled(flow, language, Channel.SMS, filled)


@router.get("/replies", response_model=list[CannedReply], responses=_AUTH)
async def canned_replies(request: Request, _: AnyOperator) -> list[CannedReply]:
    """Canned SMS replies, in the flow's order, in each of its languages (from `flows/`),
    spelled as an SMS is (Bambara in GSM-7 letters)."""
    flow = _flow(request)
    languages = flow.languages
    return [
        CannedReply(
            id=name.removeprefix(REPLY_PREFIX),
            texts={lang: as_sms(flow, name, lang) for lang in languages},
        )
        for name in flow.texts
        if name.startswith(REPLY_PREFIX)
    ]


def _question(words: str) -> str:
    """A question as a label: without its trailing keypad hint, e.g. `(# to skip)`."""
    head, bracket, _ = words.rpartition("(")
    return head.strip() if bracket and words.rstrip().endswith(")") and head.strip() else words


@router.get("/flow/answers", response_model=list[AnswerLabel], responses=_AUTH)
async def answer_labels(request: Request, _: AnyOperator) -> list[AnswerLabel]:
    """How to show a case's answers: the flow's questions, in the flow's order, and the
    label of each stored choice."""
    flow = _flow(request)
    found: dict[str, AnswerLabel] = {}
    for state in flow.states.values():
        if not state.save or state.save in found or state.kind is StateKind.ACTION:
            continue
        found[state.save] = AnswerLabel(
            field=state.save,
            label={lang: _question(words) for lang, words in state.text.items()},
            values={
                option.value: dict(option.label)
                for option in state.options
                if option.value is not None
            },
        )
    return list(found.values())
