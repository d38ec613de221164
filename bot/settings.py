"""Every setting of the helpline, read from the environment in one typed class."""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.outreach.quiet import QuietHours

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FLOW = REPO_ROOT / "flows" / "helpline.yaml"

DEFAULT_USSD_MAX_CHARS = 182
DEFAULT_USSD_TTL_SECONDS = 300
DEFAULT_SMS_TTL_SECONDS = 24 * 3600
DEFAULT_DRAFT_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_RATE_LIMIT = 30
DEFAULT_ACK_SLA_MINUTES = 15
DEFAULT_RETENTION_DAYS = 180
DEFAULT_AUTH_FAILURE_LIMIT = 10
DEFAULT_CONSOLE_IDLE_MINUTES = 20
DEFAULT_JOB_REDELIVERY_SECONDS = 60
DEFAULT_PRIMERO_MODULE = "primeromodule-cp"
PRIMERO_TOGETHER = ("PRIMERO_URL", "PRIMERO_USER", "PRIMERO_PASSWORD")
DEFAULT_FOLLOWUP_DAYS = "30,90,180"
DEFAULT_FOLLOWUP_TTL_SECONDS = 3 * 24 * 3600


def parse_days(value: str) -> tuple[int, ...]:
    """"30,90,180" → (30, 90, 180): whole days from 0 to 3650, comma-separated; empty: none."""
    days: list[int] = []
    for part in value.split(","):
        if not part.strip():
            continue
        if not part.strip().isdigit() or int(part) > 3650:
            raise ValueError(f"'{part.strip()}' is not a number of days (0 to 3650)")
        days.append(int(part))
    return tuple(sorted(set(days)))
DEFAULT_OUTBOUND_MPS = 10.0
DEFAULT_QUIET_HOURS = "21-07"
DEFAULT_TIMEZONE = "Africa/Bamako"
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")


class Env(StrEnum):
    DEV = "dev"
    PROD = "prod"


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Settings; names are the environment variables of docs/spec.md §3."""

    model_config = SettingsConfigDict(
        env_prefix="HELPLINE_", extra="ignore", frozen=True, populate_by_name=True
    )

    env: Env = Env.DEV
    data_dir: Path = Path("./var")
    redis_url: str | None = Field(default=None, validation_alias=_alias("REDIS_URL"))
    flow: Path = DEFAULT_FLOW

    public_url: str | None = None
    ussd_secret: SecretStr | None = None
    pii_key: SecretStr | None = None
    default_region: str = "ML"

    ussd_max_chars: int = Field(default=DEFAULT_USSD_MAX_CHARS, ge=64, le=182)
    ussd_ttl: int = Field(default=DEFAULT_USSD_TTL_SECONDS, gt=0)
    sms_ttl: int = Field(default=DEFAULT_SMS_TTL_SECONDS, gt=0)
    draft_ttl: int = Field(default=DEFAULT_DRAFT_TTL_SECONDS, gt=0)
    rate_limit: int = Field(default=DEFAULT_RATE_LIMIT, gt=0)
    voice_names: str = ""
    """Voice calls: a TTS voice per language, "fr-FR=Polly.Lea,en-US=Polly.Joanna"."""

    twilio_account_sid: str | None = Field(
        default=None, validation_alias=_alias("TWILIO_ACCOUNT_SID")
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, validation_alias=_alias("TWILIO_AUTH_TOKEN")
    )
    twilio_from_number: str | None = Field(
        default=None, validation_alias=_alias("TWILIO_FROM_NUMBER")
    )
    twilio_messaging_service_sid: str | None = Field(
        default=None, validation_alias=_alias("TWILIO_MESSAGING_SERVICE_SID")
    )
    twilio_api_base_url: str = Field(
        default="https://api.twilio.com", validation_alias=_alias("TWILIO_API_BASE_URL")
    )

    oncall_numbers: str = ""
    escalation_webhook: str | None = None
    ack_sla_minutes: int = Field(default=DEFAULT_ACK_SLA_MINUTES, gt=0)
    retention_days: int = Field(default=DEFAULT_RETENTION_DAYS, gt=0)
    auth_failure_limit: int = Field(default=DEFAULT_AUTH_FAILURE_LIMIT, gt=0)
    """Wrong tokens one client address may present in 15 minutes before 429s."""
    # The console signs an operator out after this long without a key or a click.
    console_idle_minutes: int = Field(default=DEFAULT_CONSOLE_IDLE_MINUTES, gt=0, le=24 * 60)
    # A job whose worker stopped mid-way (killed, lost its host) runs again after this.
    job_redelivery_seconds: float = Field(default=DEFAULT_JOB_REDELIVERY_SECONDS, gt=0)
    # Follow-up after return (docs/spec.md §11): check-ins this many days after a case is returned,
    # and how long a check-in waits for its answers (then `expired`).
    followup_days: str = DEFAULT_FOLLOWUP_DAYS
    followup_ttl: int = Field(default=DEFAULT_FOLLOWUP_TTL_SECONDS, gt=0)
    # Outreach (docs/outreach.md): messages a second for all workers together; the hours
    # when non-urgent broadcasts wait ("21-07", "" for none) and their time zone; the
    # WhatsApp Content template of an alert per language ("fr=HX…,en=HX…").
    outbound_mps: float = Field(default=DEFAULT_OUTBOUND_MPS, gt=0)
    quiet_hours: str = DEFAULT_QUIET_HOURS
    timezone: str = DEFAULT_TIMEZONE
    whatsapp_alert_template: str = ""
    # `helpline serve`'s processes when `--workers` is not given (the name uvicorn,
    # gunicorn and Procfile hosts use).
    web_concurrency: int = Field(default=1, ge=1, validation_alias=_alias("WEB_CONCURRENCY"))
    # prometheus_client's own variable (it reads it too): set by `helpline serve --workers N`
    # for its workers, whose metrics then live in files there and /metrics sums them.
    metrics_dir: Path | None = Field(default=None,
                                     validation_alias=_alias("PROMETHEUS_MULTIPROC_DIR"))

    # Referrals to Primero (docs/spec.md §12): the three PRIMERO_ settings come together,
    # or not at all.
    primero_url: str | None = Field(default=None, validation_alias=_alias("PRIMERO_URL"))
    primero_user: str | None = Field(default=None, validation_alias=_alias("PRIMERO_USER"))
    primero_password: SecretStr | None = Field(
        default=None, validation_alias=_alias("PRIMERO_PASSWORD")
    )
    primero_module: str = Field(
        default=DEFAULT_PRIMERO_MODULE, min_length=1, validation_alias=_alias("PRIMERO_MODULE")
    )
    org_name: str = ""
    """The agency Primero names as the case's source (`other_agency_name`)."""

    @model_validator(mode="after")
    def _primero_all_or_none(self) -> Settings:
        given = {
            "PRIMERO_URL": self.primero_url,
            "PRIMERO_USER": self.primero_user,
            "PRIMERO_PASSWORD": self.primero_password.get_secret_value()
            if self.primero_password else None,
        }
        missing = [name for name in PRIMERO_TOGETHER if not given[name]]
        if len(missing) == len(PRIMERO_TOGETHER):
            return self
        if missing:
            raise ValueError(f"{', '.join(PRIMERO_TOGETHER)} go together (all three or none): "
                             f"{' and '.join(missing)} missing")
        if not str(self.primero_url).startswith(("https://", "http://")):
            raise ValueError("PRIMERO_URL must start with https:// (or http:// on a test machine)")
        if not self.org_name.strip():
            raise ValueError("HELPLINE_ORG_NAME is required with PRIMERO_URL "
                             "(the agency Primero names as the case's source)")
        return self

    @property
    def primero_configured(self) -> bool:
        return bool(self.primero_url)

    @field_validator("followup_days")
    @classmethod
    def _days(cls, value: str) -> str:
        parse_days(value)
        return value

    @property
    def followup_day_list(self) -> tuple[int, ...]:
        """`HELPLINE_FOLLOWUP_DAYS` as numbers of days, in order."""
        return parse_days(self.followup_days)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"HELPLINE_TIMEZONE: unknown time zone {value!r} "
                             "(an IANA name such as Africa/Bamako)") from None
        return value

    @model_validator(mode="after")
    def _quiet_hours_readable(self) -> Settings:
        QuietHours.parse(self.quiet_hours, self.timezone)  # ValueError names the setting
        return self

    @field_validator("whatsapp_alert_template")
    @classmethod
    def _templates_readable(cls, value: str) -> str:
        for entry in filter(None, (part.strip() for part in value.split(","))):
            language, _, sid = entry.partition("=")
            if not language.strip() or CONTENT_SID.fullmatch(sid.strip()) is None:
                raise ValueError(f"HELPLINE_WHATSAPP_ALERT_TEMPLATE: {entry!r} is not "
                                 "<language>=<Content SID> (HX and 32 hex digits)")
        return value

    def whatsapp_templates(self) -> dict[str, str]:
        """`HELPLINE_WHATSAPP_ALERT_TEMPLATE` as language → Content SID."""
        pairs = (entry.partition("=") for entry in self.whatsapp_alert_template.split(","))
        return {language.strip(): sid.strip() for language, _, sid in pairs if sid.strip()}

    def quiet(self) -> QuietHours | None:
        """`HELPLINE_QUIET_HOURS` in `HELPLINE_TIMEZONE`; None when there are none."""
        return QuietHours.parse(self.quiet_hours, self.timezone)

    def missing_for_prod(self) -> list[str]:
        """Names of the settings that `HELPLINE_ENV=prod` requires and that are unset."""
        required = {
            "REDIS_URL": self.redis_url,
            "TWILIO_AUTH_TOKEN": self.twilio_auth_token,
            "HELPLINE_PUBLIC_URL": self.public_url,
            "HELPLINE_USSD_SECRET": self.ussd_secret,
            "HELPLINE_PII_KEY": self.pii_key,
        }
        return [name for name, value in required.items() if not value]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def settings_problems(error: ValidationError) -> list[str]:
    """One line a wrong setting, named as in the environment (what the commands print)."""
    lines = []
    for problem in error.errors():
        if not problem["loc"]:  # a rule over several settings names them itself
            lines.append(str(problem["msg"]).removeprefix("Value error, "))
            continue
        name = str(problem["loc"][0])
        name = f"HELPLINE_{name.upper()}" if name.islower() else name
        lines.append(f"{name}: {problem['msg']}")
    return lines
