"""Structured logs without phone numbers or secrets, and the metrics of docs/spec.md §9.

Logs are JSON lines. A phone appears only as its HMAC pseudonym, passed as
`extra={"phone": pseudonym}`; message bodies are never logged at INFO. As a
safety net every line is scrubbed of anything shaped like an E.164 number and
of the USSD `key` query parameter: `+` and `00` international forms and
national numbers (8 digits or more, grouped or not) alike; a `+` and 8 digits
or more is masked wherever it stands, even glued to a word. A bare case
reference (8 digits) is masked too: it cannot be told from a national number.
Identifiers the helpline makes are logged typed, through `typed_id`: `case:65734874`,
`job:1733600000000-0`, `delivery:confirmation:65734874`, `outbox:1733600000000-0`.
Such a token is left alone only in its exact shape (a reference's check digit
right, a stream id's 13 digits of milliseconds); anything else after a prefix is
masked like any number. The access log is ours (uvicorn's is off), with the query
string's secrets redacted.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.cases.references import is_valid

ACCESS_LOGGER = "helpline.access"
# A `+` and 8 digits or more (grouped or not) wherever it stands, glued to a word too
# (`ZEBRAALG+22376510009`: anyone's text in a header); else a run of 8 to 17 digits, in
# groups separated by one space, dot, dash or slash, not inside a word (a message SID, a
# pseudonym): +223 70 00 00 99, 0022370000099, 70000099.
_PHONE = re.compile(r"\+\d(?:[ .\-/]?\d){7,16}\d*"
                    r"|(?<![\w+])(?:whatsapp:)?(?:\+|00)?\d(?:[ .\-/]?\d){7,16}(?![\w])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MIN_DIGITS = 8
# The helpline's own ids, typed (see `typed_id`), each in its exact shape and not run on
# into more digits. A Redis stream id: 13 digits of milliseconds, `-`, a sequence number.
# Its milliseconds start with 1 until 2033 (then ids are masked: safe, not leaked); no
# phone number has 13 digits starting with 1 (+1 numbers have 11). A delivery id
# (bot/jobs: messages, followups, oncall) names its case, then maybe a journal entry or a
# pseudonym (12 hex with a letter: 12 digits could be a number), a check-in number or an
# on-call event.
_REF = r"\d{8}"
_STREAM = r"1\d{12}-\d{1,10}"
_HEX = r"(?=\d{0,11}[a-f])[0-9a-f]{12}"
_TYPED = re.compile(
    rf"(?<![\w:])(?:case:(?P<case>{_REF})|(?:job|outbox):{_STREAM}"
    rf"|delivery:(?:confirmation:(?P<confirmation>{_REF})"
    rf"|message:(?P<message>{_REF}):{_HEX}|followup:(?P<followup>{_REF}):\d{{1,4}}"
    rf"|oncall:(?P<oncall>{_REF}):(?:urgent|escalated-\d{{1,2}}|sla-\d{{1,4}})"
    rf":(?:webhook|sms:{_HEX})))"
    r"(?![\w:]|[ .\-/]\d)"
)
_TYPED_REFERENCES = ("case", "confirmation", "message", "followup", "oncall")
IdKind = Literal["case", "job", "outbox", "delivery"]
_SECRET_QUERY = re.compile(r"((?:^|[?&])key=)[^&\s]*", re.IGNORECASE)
_LOGGABLE_PARAMETERS = frozenset({"status", "kind", "priority", "escalated", "limit",
                                  "cursor", "since"})
_RESERVED = frozenset(vars(logging.makeLogRecord({})))
_FIELDS = ("phone", "channel", "outcome", "reason", "error", "status", "method", "path",
           "duration_ms", "count", "message_sid", "delivery", "host")

disable_created_metrics()  # type: ignore[no-untyped-call]

MESSAGES = Counter(
    "helpline_messages_total", "Inbound messages answered, by channel and outcome",
    ["channel", "outcome"],
)
HOP_SECONDS = Histogram(
    "helpline_hop_seconds", "Time to answer one inbound message (a USSD hop or an SMS)",
    ["channel"], buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
)
FALLBACKS = Counter(
    "helpline_fallbacks_total", "Static fallback answers given instead of the conversation",
    ["channel", "reason"],
)
RATE_LIMITED_PHONES = Counter(
    "helpline_rate_limited_phones_total", "Phones that went over the inbound rate limit",
)
REJECTED = Counter(
    "helpline_webhook_rejected_total", "Gateway requests refused, by channel and HTTP status",
    ["channel", "status"],
)
DELIVERY_STATUSES = Counter(
    "helpline_sms_status_callbacks_total", "Twilio delivery statuses received", ["status"],
)
# Read from Redis at each scrape: with several processes, the latest value any wrote.
CASES = Gauge("helpline_cases", "Cases in the store, by kind", ["kind"],
              multiprocess_mode="mostrecent")
QUEUE_DEPTH = Gauge("helpline_queue_depth", "Jobs waiting in the worker's queue",
                    multiprocess_mode="mostrecent")
STORE_UP = Gauge("helpline_store_up", "1 when Redis answered the last metrics scrape",
                 multiprocess_mode="mostrecent")


def typed_id(kind: IdKind, value: str) -> str:
    """An id of ours as a log line writes it (`case:65734874`) so that `scrub` keeps it."""
    return f"{kind}:{value}"


def _mask_phone(found: re.Match[str]) -> str:
    text = found.group()
    if _DATE.fullmatch(text) or sum(char.isdigit() for char in text) < _MIN_DIGITS:
        return text
    return "[phone]"


def _keep_typed(found: re.Match[str]) -> str:
    text = found.group()
    references = [found.group(name) for name in _TYPED_REFERENCES if found.group(name)]
    if all(is_valid(reference) for reference in references):
        return text
    return _PHONE.sub(_mask_phone, text)


def _mask_numbers(text: str) -> str:
    """Every number masked, except in the typed ids of ours that have their exact shape."""
    kept = 0
    parts = []
    for found in _TYPED.finditer(text):
        parts += [_PHONE.sub(_mask_phone, text[kept:found.start()]), _keep_typed(found)]
        kept = found.end()
    parts.append(_PHONE.sub(_mask_phone, text[kept:]))
    return "".join(parts)


def scrub(text: str) -> str:
    """`text` without phone numbers (any format) or the USSD key; typed ids kept."""
    return _SECRET_QUERY.sub(r"\1[redacted]", _mask_numbers(text))


def loggable_query(query: str) -> str:
    """A query string fit for a log line: values of unknown parameters redacted, then the
    whole scrubbed like any line (a name is the caller's text too: `?+22376000001=`).

    A search (`q=`) may be a name or a phone number in any spelling and any URL
    encoding, and `key=` is the USSD secret: only the values of known, harmless
    parameters (filters, paging) are kept.
    """
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return scrub("&".join(
        f"{name}={value if name in _LOGGABLE_PARAMETERS else '[redacted]'}"
        for name, value in pairs
    ))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and the known extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for name in _FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class RedactQuery(logging.Filter):
    """For uvicorn's own access log, should someone turn it on: no `key=` in its lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the app and uvicorn; uvicorn's access log scrubbed."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").addFilter(RedactQuery())
    # httpx logs every request's URL at INFO; a Twilio look-up URL carries the number.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # transitions narrates every callback at INFO: one line per state change is noise.
    logging.getLogger("transitions").setLevel(logging.WARNING)


def uvicorn_log_config() -> dict[str, Any]:
    """Leave logging to `configure_logging` (uvicorn would install its own handlers)."""
    return {"version": 1, "disable_existing_loggers": False}


class AccessLog:
    """Pure ASGI middleware: one structured line per HTTP request, secrets redacted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            query = loggable_query(scope.get("query_string", b"").decode("latin-1"))
            path = scope["path"] + (f"?{query}" if query else "")
            self.log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
