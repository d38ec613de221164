"""`helpline flows check`: every problem of a flow, one precise line each."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from bot.engine import sms
from bot.engine.keywords import WORDS, fold, recognise
from bot.engine.render import (
    PLACEHOLDER,
    USSD_CONTINUE,
    USSD_END,
    Limits,
    fill,
    screen_pages,
    screen_parts,
)
from bot.engine.spelling import spelled
from bot.engine.validators import VALIDATORS
from bot.flows.model import (
    REQUIRED_TEXTS,
    RESERVED_KEYS,
    Action,
    AlertsRoute,
    Flow,
    LookupRoute,
    OpenRequestRoute,
    State,
    StateKind,
)
from bot.flows.survey_lint import check_survey
from bot.flows.voice_lint import VoiceReport, check_voice, is_voice_text
from bot.outreach.subscriptions import COUNTRIES
from bot.types import Channel

HOUSE_MAX_OPTIONS = 5
SAMPLE_VALUES = {"reference": "12345678", "status": "return_arranged"}
SAMPLE_ANSWERS = {
    "name": "Aminata Traoré",
    "nationality": "Mali",
    "country": "Niger",
    "city": "Agadez",
    "location": "Gare routière d'Agadez",
    "topic": "Je veux rentrer à Kayes",
}
SAMPLE_YES_NO = "yes"
SMS_ONLY_TEXTS = frozenset({"confirmation"})
SMS_ONLY_PREFIX = "reply_"
"""Texts only ever sent by SMS (the confirmation, operators' canned replies): no USSD limit."""


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    encodings: dict[str, dict[sms.Encoding, list[str]]] = field(default_factory=dict)
    voice: VoiceReport = field(default_factory=VoiceReport)
    segments: dict[str, int] = field(default_factory=dict)
    """Per language: SMS segments of every screen, summed (what the whole flow costs)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def _where(flow: Flow, state: State) -> str:
    return f"{flow.path}:{state.line}: state '{state.name}'"


def _structure(flow: Flow, report: Report) -> None:
    for name in REQUIRED_TEXTS:
        if name not in flow.texts:
            report.problems.append(f"{flow.path}: missing text '{name}' (the engine needs it)")
    if any(not c.verified for c in flow.contacts.values()) and "unverified" not in flow.texts:
        report.problems.append(f"{flow.path}: missing text 'unverified' (a contact is unverified)")
    entries: list[tuple[str, str | None]] = [
        ("start", flow.start), ("home", flow.home), ("first_start", flow.first_start),
        *((f"first_start_on.{channel}", name) for channel, name in flow.first_start_on.items()),
    ]
    for channel in flow.first_start_on:
        if channel not in set(Channel):
            report.problems.append(f"{flow.path}: first_start_on names '{channel}', not a channel "
                                   f"({', '.join(Channel)})")
    for label, state_name in entries:
        if state_name is not None and state_name not in flow.states:
            report.problems.append(f"{flow.path}: {label} '{state_name}' is not a state")
    for state in flow.states.values():
        where = _where(flow, state)
        for index, option in enumerate(state.options, start=1):
            if option.to not in flow.states:
                report.problems.append(
                    f"{where}: option {option.key} leads to '{option.to}', which is not a state"
                )
            if option.key in RESERVED_KEYS or not option.key.isdigit():
                report.problems.append(
                    f"{where}: option {index} key '{option.key}' must be digits, not 0/00/98"
                )
        keys = [option.key for option in state.options]
        if len(set(keys)) != len(keys):
            report.problems.append(f"{where}: two options share a key")
        if state.kind is StateKind.MENU and not state.options:
            report.problems.append(f"{where}: dead end: no options and not `end: true`")
        if len(state.options) > HOUSE_MAX_OPTIONS:
            if state.many_options_because:
                report.notes.append(f"{where}: {len(state.options)} options (house rule: at most "
                                    f"{HOUSE_MAX_OPTIONS}), because {state.many_options_because}")
            else:
                report.problems.append(
                    f"{where}: {len(state.options)} options (house rule: at most "
                    f"{HOUSE_MAX_OPTIONS}); trim them or say why in `many_options_because`"
                )
        if state.kind is StateKind.QUESTION:
            if state.validate not in VALIDATORS:
                report.problems.append(
                    f"{where}: unknown validator '{state.validate}' "
                    f"(one of {', '.join(sorted(VALIDATORS))})"
                )
            if not state.save:
                report.problems.append(f"{where}: a question needs `save`")
        if state.kind in (StateKind.QUESTION, StateKind.ACTION) and not state.targets():
            report.problems.append(f"{where}: dead end: no `to`")
        if state.to is not None and state.to not in flow.states:
            report.problems.append(f"{where}: `to` leads to '{state.to}', which is not a state")
        for route, target in state.routes.items():
            if target not in flow.states:
                report.problems.append(f"{where}: `to.{route}` leads to '{target}', "
                                       "which is not a state")
        if state.action is Action.LOOKUP_CASE:
            missing = {r.value for r in LookupRoute} - set(state.routes)
            if missing:
                report.problems.append(
                    f"{where}: lookup_case needs `to` for {', '.join(sorted(missing))}"
                )
        if state.action is Action.FIND_OPEN_REQUEST:
            missing = {r.value for r in OpenRequestRoute} - set(state.routes)
            if missing:
                report.problems.append(
                    f"{where}: find_open_request needs `to` for {', '.join(sorted(missing))}"
                )
        if state.action is Action.BY_CHANNEL:
            missing = {str(channel) for channel in Channel} - set(state.routes)
            if missing:
                report.problems.append(
                    f"{where}: by_channel needs `to` for {', '.join(sorted(missing))}")
        if state.action is Action.SUBSCRIBE_ALERTS:
            _subscribe_alerts(flow, state, where, report)
        if state.action is Action.SET_LANGUAGE and state.params.get("language") not in (
            flow.languages
        ):
            report.problems.append(f"{where}: set_language needs `with: {{language: …}}` "
                                   f"with one of {', '.join(flow.languages)}")


def _subscribe_alerts(flow: Flow, state: State, where: str, report: Report) -> None:
    missing = {route.value for route in AlertsRoute} - set(state.routes)
    if missing:
        report.problems.append(f"{where}: subscribe_alerts needs `to` for "
                               f"{', '.join(sorted(missing))}")
    answer = state.params.get("country")
    savers = [s for s in flow.states.values() if answer and s.save == answer]
    if not savers:
        report.problems.append(f"{where}: subscribe_alerts needs `with: {{country: <answer>}}` "
                               "naming the answer of a country menu")
    for saver in savers:
        values = [option.value for option in saver.options]
        if saver.kind is not StateKind.MENU or not all(v in COUNTRIES for v in values):
            report.problems.append(
                f"{_where(flow, saver)}: the country of an alert subscription is a menu whose "
                f"options' values are country codes ({', '.join(COUNTRIES)})")


def _alert_keywords(flow: Flow, report: Report) -> None:
    if flow.alerts is None:
        return
    if flow.alerts not in flow.states:
        report.problems.append(f"{flow.path}: alerts.start '{flow.alerts}' is not a state")
    for word in flow.alert_keywords:
        folded = fold(word)
        if not folded.isalpha() or not folded.isascii():
            report.problems.append(f"{flow.path}: alert keyword '{word}' must be one word "
                                   "of letters")
        elif folded in WORDS or recognise(word) is not None:
            report.problems.append(f"{flow.path}: alert keyword '{word}' is already the "
                                   "keyword of something else")


def _reachability(flow: Flow, report: Report) -> None:
    roots = [name for name in (flow.start, flow.home, flow.first_start or "",
                               *flow.first_start_on.values(), flow.followup or "",
                               flow.alerts or "")
             if name in flow.states]
    seen = set(roots)
    queue = deque(roots)
    while queue:
        for target in flow.states[queue.popleft()].targets():
            if target in flow.states and target not in seen:
                seen.add(target)
                queue.append(target)
    for state in flow.states.values():
        if state.name not in seen:
            report.problems.append(f"{_where(flow, state)}: unreachable from '{flow.start}'")


def _placeholders(flow: Flow, state: State) -> Iterator[str]:
    texts = [*state.text.values(), *(w for o in state.options for w in o.label.values())]
    for text in texts:
        for match in PLACEHOLDER.finditer(text):
            name = match.group(1)
            head, _, rest = name.partition(".")
            if name in SAMPLE_VALUES or (head == "answers" and rest):
                continue
            if head == "contacts" and rest.partition(".")[0] in flow.contacts and (
                rest.partition(".")[2] in ("", "name")
            ):
                continue
            yield name


def _screens(flow: Flow, report: Report, ussd_max_chars: int) -> None:
    if "more" not in flow.texts or "back" not in flow.texts:
        return  # already reported as missing texts
    answers = {**SAMPLE_ANSWERS}
    ussd = Limits(Channel.USSD, ussd_max_chars)
    sms_limits = Limits(Channel.SMS)
    for state in flow.states.values():
        if state.kind is StateKind.ACTION:
            continue
        where = _where(flow, state)
        for name in sorted(set(_placeholders(flow, state))):
            report.problems.append(f"{where}: unknown placeholder {{{name}}}")
        for language in flow.languages:
            values = {**SAMPLE_VALUES}
            sample = {**answers, **{s.save: SAMPLE_YES_NO for s in flow.states.values()
                                    if s.save and s.save not in answers}}
            body, tail = screen_parts(flow, state, language, values, sample)
            pages = screen_pages(flow, body, tail, language, ussd)
            end = state.kind is StateKind.END
            prefix = USSD_END if end else USSD_CONTINUE
            for number, page in enumerate(pages, start=1):
                limit = ussd.screen_limit(page)
                if len(prefix) + len(page) > limit:
                    report.problems.append(
                        f"{where} [{language}]: USSD screen over {limit} chars "
                        f"({sms.encoding(page)}) after pagination "
                        f"(page {number}: {len(prefix) + len(page)})"
                    )
            if end and len(pages) > 1:
                limit = ussd.screen_limit(pages[0])
                report.problems.append(
                    f"{where} [{language}]: an END screen must fit one USSD screen "
                    f"({limit} chars in {sms.encoding(pages[0])}; it needs {len(pages)})"
                )
            for number, page in enumerate(
                screen_pages(flow, body, tail, language, sms_limits), start=1
            ):
                parts = sms.segments(page)
                report.segments[language] = report.segments.get(language, 0) + parts
                if parts > 3:
                    report.problems.append(
                        f"{where} [{language}]: SMS over 3 segments ({parts}, page {number})"
                    )
            whole = spelled(flow, language, Channel.SMS, "\n".join([body, *tail]))
            by_encoding = report.encodings.setdefault(language, {e: [] for e in sms.Encoding})
            by_encoding[sms.encoding(whole)].append(state.name)


def _texts(flow: Flow, report: Report, ussd_max_chars: int) -> None:
    """Texts shown on their own (fallback, opt-out…) must fit one USSD END screen and 3 SMS."""
    for name, text in flow.texts.items():
        if is_voice_text(name):
            continue  # spoken, never shown: checked by the voice lint
        where = f"{flow.path}: text '{name}'"
        for language, words in text.items():
            for match in PLACEHOLDER.finditer(words):
                if match.group(1) in SAMPLE_VALUES:  # e.g. {reference} in the confirmation SMS
                    continue
                head, _, rest = match.group(1).partition(".")
                contact_id, _, attribute = rest.partition(".")
                if head != "contacts" or contact_id not in flow.contacts or attribute not in (
                    "", "name"
                ):
                    report.problems.append(f"{where} [{language}]: unknown placeholder "
                                           f"{{{match.group(1)}}}")
            shown = spelled(flow, language, Channel.USSD,
                            fill(flow, words, language, SAMPLE_VALUES, SAMPLE_ANSWERS))
            limit = Limits(Channel.USSD, ussd_max_chars).screen_limit(shown)
            if name not in SMS_ONLY_TEXTS and not name.startswith(SMS_ONLY_PREFIX) and (
                len(USSD_END) + len(shown) > limit
            ):
                report.problems.append(f"{where} [{language}]: over one USSD screen "
                                       f"({len(USSD_END) + len(shown)} chars, "
                                       f"{sms.encoding(shown)} limit {limit})")
            if sms.segments(shown) > 3:
                report.problems.append(f"{where} [{language}]: SMS over 3 segments")


def check(flow: Flow, load_problems: list[str], *, ussd_max_chars: int = 182) -> Report:
    report = Report(problems=list(load_problems))
    _structure(flow, report)
    _alert_keywords(flow, report)
    _reachability(flow, report)
    _screens(flow, report, ussd_max_chars)
    _texts(flow, report, ussd_max_chars)
    report.problems.extend(check_survey(flow))
    report.voice = check_voice(flow, values=SAMPLE_VALUES, answers=SAMPLE_ANSWERS)
    report.problems.extend(report.voice.problems)
    report.notes.extend(report.voice.notes)
    return report
