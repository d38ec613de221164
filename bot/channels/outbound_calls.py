"""Calls the helpline places itself (a follow-up check-in, docs/spec.md §4 and §11).

Twilio asks the voice webhook what to say once the migrant answers, as for any
call, with `Direction=outbound-api`: the migrant is then `To` and our number
`From`. The first request's URL (signed by Twilio like every request) names the
check-in and its language (`bot.jobs.followups.voice_url`): the conversation
opens at the flow's survey instead of the main menu.

We place every call with answering machine detection (`bot.jobs.twilio_calls`), so
that request says who answered (`AnsweredBy`). A voicemail or a fax hears nothing:
the answer is `<Hangup/>` alone, before the conversation is touched, because the
survey's first words would tell anyone who plays the mailbox that this person is a
returnee in touch with the helpline. `human` and `unknown` (most often a person who
has not spoken yet) hear the survey.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.cases.followups import parse_token
from bot.engine.session import Opening
from bot.engine.survey import FOLLOWUP_ANSWER
from bot.flows.model import Flow

OUTBOUND = "outbound-api"
FOLLOWUP_PARAMETER = "followup"  # as bot.jobs.followups.FOLLOWUP_PARAMETER
LANGUAGE_PARAMETER = "lang"
ANSWERED_BY = "AnsweredBy"
NOT_A_PERSON = frozenset({"machine_start", "machine_end_beep", "machine_end_silence",
                          "machine_end_other", "fax"})
"""Twilio's `AnsweredBy` values for a voicemail, an answering machine or a fax."""


def placed_by_us(form: Mapping[str, object]) -> bool:
    return form.get("Direction") == OUTBOUND


def answered_by_machine(form: Mapping[str, object]) -> bool:
    """A call we placed that a voicemail or a fax picked up: nothing may be said."""
    return placed_by_us(form) and form.get(ANSWERED_BY) in NOT_A_PERSON


def migrant_field(form: Mapping[str, object]) -> str:
    """The form field holding the migrant's number: `To` on a call we placed."""
    return "To" if placed_by_us(form) else "From"


def opening(flow: Flow, form: Mapping[str, object], query: Mapping[str, str]) -> Opening | None:
    """Where the first request of a call we placed opens its conversation (None: as usual)."""
    token = query.get(FOLLOWUP_PARAMETER, "")
    if not placed_by_us(form) or flow.followup is None or parse_token(token) is None:
        return None
    language = query.get(LANGUAGE_PARAMETER, "")
    if language not in flow.languages:
        language = flow.default_language
    return Opening(flow.followup, language, {FOLLOWUP_ANSWER: token})
