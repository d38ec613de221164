"""Turn a session into the screen a phone shows: texts, options, navigation, pages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from bot.engine import recordings, sms
from bot.engine.session import Session
from bot.engine.spelling import spelled
from bot.flows.model import NAV_BACK, NAV_HOME, NAV_MORE, Flow, State, StateKind
from bot.types import Channel, statically_frozen

USSD_CONTINUE = "CON "
USSD_END = "END "
SMS_MAX_SEGMENTS = 3
RECORDED = "voice_recorded"
"""How an answer said on a call is named on screen (its recording is not shown)."""


def ucs2_screen_limit(gsm7_limit: int) -> int:
    """A USSD screen carries 160 octets: 182 GSM-7 septets, or 80 UCS-2 characters."""
    return (gsm7_limit * 7 + 15) // 16


PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)\}")


@dataclass(frozen=True)
class Limits:
    channel: Channel
    ussd_max_chars: int = 182
    _hash: int = field(init=False, repr=False, compare=False)
    """Computed once: limits key the screen caches, asked several times a hop."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.channel, self.ussd_max_chars)))

    def __hash__(self) -> int:
        return self._hash

    def screen_limit(self, screen: str) -> int:
        """USSD: the characters a screen of this text may hold, by its encoding."""
        if sms.encoding(screen) is sms.Encoding.GSM7:
            return self.ussd_max_chars
        return ucs2_screen_limit(self.ussd_max_chars)

    def fits(self, screen: str) -> bool:
        if self.channel is Channel.USSD:
            return len(USSD_CONTINUE) + len(screen) <= self.screen_limit(screen)
        return sms.segments(screen) <= SMS_MAX_SEGMENTS


@statically_frozen
class Reply:
    text: str
    end: bool = False
    page: int = 0
    pages: int = 1


def _format_reference(reference: str) -> str:
    return f"{reference[:4]}-{reference[4:]}" if len(reference) == 8 else reference


def fill(flow: Flow, template: str, language: str, values: Mapping[str, str],
         answers: Mapping[str, str]) -> str:
    """Replace `{…}` placeholders; an unknown one renders empty (the lint forbids them)."""

    def resolve(match: re.Match[str]) -> str:
        name = match.group(1)
        head, _, rest = name.partition(".")
        if head == "answers":
            value = answers.get(rest, "")
            if value.startswith(recordings.PREFIX) and recordings.parse(value) is not None:
                return flow.text(RECORDED, language) if RECORDED in flow.texts else ""
            return flow.text(value, language) if value in ("yes", "no") else value
        if head == "contacts":
            contact_id, _, attribute = rest.partition(".")
            contact = flow.contacts.get(contact_id)
            if contact is None:
                return ""
            # an unverified contact is marked in either form, its number or its name
            shown = (contact.name.get(language) or contact.name.get(flow.default_language, "")
                     if attribute == "name" else contact.number)
            if contact.verified or "unverified" not in flow.texts:
                return shown
            return f"{shown} {flow.text('unverified', language)}"
        if name == "reference":
            return _format_reference(values.get("reference", ""))
        if name == "status":
            status = values.get("status", "")
            key = f"status_{status}"
            return flow.text(key, language) if key in flow.texts else status
        return values.get(name, "")

    return PLACEHOLDER.sub(resolve, template)


def screen_parts(flow: Flow, state: State, language: str, values: Mapping[str, str],
                 answers: Mapping[str, str], hint: str | None = None) -> tuple[str, list[str]]:
    """The body (paginable words) and the tail (option and navigation lines) of a screen."""
    body = fill(flow, state.text.get(language, ""), language, values, answers)
    if hint:
        body = f"{flow.text(hint if hint in flow.texts else 'invalid', language)}\n{body}"
    tail = [
        f"{option.key} {fill(flow, option.label.get(language, ''), language, values, answers)}"
        for option in state.options
    ]
    if state.nav and state.kind is not StateKind.END and state.name != flow.home:
        tail.append(
            f"{NAV_BACK} {flow.text('back', language)} {NAV_HOME} {flow.text('home', language)}"
        )
    return body, tail


def paginate(body: str, tail: list[str], *, more: str, back: str, limits: Limits) -> list[str]:
    """Split a screen into pages that each fit `limits`.

    Every page but the last ends with the `98` line (and the `0` line after
    the first page); the last page carries the options. The last page may still
    be too long when the options alone do not fit: the lint reports that.
    """
    tail_text = "\n".join(tail)
    whole = f"{body}\n{tail_text}" if tail_text else body
    if limits.fits(whole) or not body:
        return [whole]
    pages: list[str] = []
    words = body.replace("\n", " \n ").split(" ")
    while words:
        rest = " ".join(words).replace(" \n ", "\n").strip()
        last = f"{rest}\n{tail_text}" if tail_text else rest
        if limits.fits(last):
            pages.append(last)
            return pages
        footer = f"\n{NAV_MORE} {more}" + (f"\n{NAV_BACK} {back}" if pages else "")
        taken = 0
        for count in range(1, len(words) + 1):
            chunk = " ".join(words[:count]).replace(" \n ", "\n").strip()
            if not limits.fits(chunk + footer):
                break
            taken = count
        if taken == 0:
            taken = 1  # one word longer than a page: let it overflow, never loop forever
        chunk = " ".join(words[:taken]).replace(" \n ", "\n").strip()
        pages.append(chunk + footer)
        words = words[taken:]
    pages.append(tail_text)
    return pages


def render(flow: Flow, session: Session, limits: Limits) -> Reply:
    """The page of the current screen the session is on (voice: the screen, spoken)."""
    if limits.channel is Channel.VOICE:
        from bot.engine.speech import render_speech  # speech builds on this module

        return render_speech(flow, session)
    language = session.language
    if session.resuming:
        pages = screen_pages(flow, flow.text("resume", language), [], language, limits)
        end = False
    else:
        state = flow.states[session.state]
        end = state.kind is StateKind.END
        if _is_static(flow, state.name):
            return _static_reply(flow, state.name, language, session.hint, limits, session.page)
        else:
            body, tail = screen_parts(flow, state, language, session.vars, session.answers,
                                      session.hint)
            pages = screen_pages(flow, body, tail, language, limits)
    page = min(session.page, len(pages) - 1)
    return Reply(text=pages[page], end=end, page=page, pages=len(pages))


def screen_pages(flow: Flow, body: str, tail: list[str], language: str,
                 limits: Limits) -> list[str]:
    """The screen's pages as the channel writes them (spelling applied before measuring)."""

    def written(text: str) -> str:
        return spelled(flow, language, limits.channel, text)

    return paginate(written(body), [written(line) for line in tail],
                    more=written(flow.text("more", language)),
                    back=written(flow.text("back", language)), limits=limits)


@lru_cache(maxsize=1024)
def _is_static(flow: Flow, state_name: str) -> bool:
    """True when a screen's words depend on nothing but its language (no session values)."""
    state = flow.states[state_name]
    texts = [*state.text.values(), *(w for o in state.options for w in o.label.values())]
    return not any(
        match.group(1).partition(".")[0] != "contacts"
        for text in texts for match in PLACEHOLDER.finditer(text)
    )


@lru_cache(maxsize=8192)
def _static_reply(flow: Flow, state_name: str, language: str, hint: str | None, limits: Limits,
                  page: int) -> Reply:
    """A page of a screen whose words depend on nothing but its language: the same
    (immutable) reply every time."""
    pages = _static_pages(flow, state_name, language, hint, limits)
    shown = min(page, len(pages) - 1)
    return Reply(text=pages[shown], end=flow.states[state_name].kind is StateKind.END,
                 page=shown, pages=len(pages))


@lru_cache(maxsize=8192)
def _static_pages(flow: Flow, state_name: str, language: str, hint: str | None,
                  limits: Limits) -> list[str]:
    body, tail = screen_parts(flow, flow.states[state_name], language, {}, {}, hint)
    return screen_pages(flow, body, tail, language, limits)
