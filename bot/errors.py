"""Errors of the helpline, named for what went wrong."""

from collections.abc import Sequence

from redis.exceptions import RedisError


class HelplineError(Exception):
    """Base class of the helpline's own errors."""


class FlowError(HelplineError):
    """A flow file cannot be loaded: the message names file, line and state."""


class StoreUnavailable(HelplineError):
    """Redis did not answer in time."""


class NotReplicated(StoreUnavailable, RedisError):
    """No replica acknowledged a new case in time: its reference must not be shown yet.

    A RedisError too, so that the webhooks answer it as the store being away.
    """


class PhoneBusy(HelplineError):
    """Another process holds this phone's lease for longer than we can wait."""


class InvalidReference(HelplineError):
    """A case reference is malformed (wrong length or check digit)."""


class CaseNotFound(HelplineError):
    """A well-formed case reference that does not exist."""


class ReferenceTaken(HelplineError):
    """A freshly drawn reference is already used: draw another."""


class IllegalTransition(HelplineError):
    """A case status change the lifecycle does not allow; carries the allowed ones."""

    def __init__(self, current: str, allowed: Sequence[str]) -> None:
        self.current = str(current)
        self.allowed = [str(status) for status in allowed]
        super().__init__(f"not allowed from {self.current}; allowed: {', '.join(self.allowed)}")


class MessageRefused(HelplineError):
    """An SMS to a migrant who opted out, said SMS is not safe, or whose phone is erased."""


class ReferralRefused(HelplineError):
    """A referral that may not be made: its system is not configured, the case is erased,
    or a referral of the case is pending or sent already."""


class FollowupRefused(HelplineError):
    """A check-in that may not go: no follow-up consent, opted out, SMS not safe, erased."""


class EscalationRefused(HelplineError):
    """An escalation to a level lower than the case's current one."""


class OperatorExists(HelplineError):
    """An active operator already has that name."""


class LastAdmin(HelplineError):
    """Revoking this operator would leave no active admin."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is the last active admin: add another admin first")


class OperatorNotFound(HelplineError):
    """No active operator has that name."""


class MalformedRequest(HelplineError):
    """A gateway request that cannot be read: missing fields, bad encoding, wrong type."""


class RequestTooLarge(MalformedRequest):
    """A gateway request body over the webhooks' limit."""


class ProdSettingsMissing(HelplineError):
    """`HELPLINE_ENV=prod` without every setting it requires; carries their names."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = list(missing)
        super().__init__("\n".join(f"HELPLINE_ENV=prod requires {name}" for name in missing))
