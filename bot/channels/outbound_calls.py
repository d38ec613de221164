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

How a check-in call ended comes to the status webhook (its `StatusCallback` names
the check-in too): a call nobody took (busy, no answer, or a machine here) becomes a
`DeliveryStatus` with `followup` set, recorded (or kept while Redis is away) as any
status, and the check-in is called again once (`bot.cases.followups.call_unanswered`).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.cases.followups import Unanswered, parse_token
from bot.channels.twilio_sms import DeliveryStatus
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


CALL_ENDS = {"busy": Unanswered.BUSY, "no-answer": Unanswered.NO_ANSWER,
             "failed": Unanswered.FAILED}
"""Twilio's final `CallStatus` values of a call nobody took (`completed` and `canceled`
end a call someone took, or that we stopped: nothing to do)."""


def read_call_end(form: Mapping[str, object], followup: str) -> DeliveryStatus | None:
    """A check-in call's status callback: why nobody took it, or None (someone did)."""
    why = CALL_ENDS.get(str(form.get("CallStatus", "")))
    if why is None:
        return None
    return DeliveryStatus(str(form.get("CallSid", "")), str(why), followup=followup)


def voicemail(form: Mapping[str, object], followup: str) -> DeliveryStatus:
    """A check-in call a voicemail or a fax took (`answered_by_machine`): nobody did."""
    return DeliveryStatus(str(form.get("CallSid", "")), str(Unanswered.VOICEMAIL),
                          followup=followup)


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
