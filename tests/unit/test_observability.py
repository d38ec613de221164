"""Logs: JSON lines without phone numbers or the USSD key."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time

from bot import privacy
from bot.cases.references import draw_reference, is_valid
from bot.jobs.followups import followup_id
from bot.jobs.messages import confirmation_id, message_id
from bot.jobs.oncall import notice_job_id
from bot.observability import JsonFormatter, RedactQuery, scrub, typed_id

# The spellings of a phone number the scrub tests above and below use.
NUMBERS = ("+22370000099", "0022370000099", "70000099", "+223 70 00 00 99",
           "00223 70 00 00 99", "70 00 00 99", "70.00.00.99", "70-00-00-99",
           "whatsapp:+22370000099", "+33 6 12 34 56 78", "+14155550100")


def test_scrub_masks_phone_numbers_and_the_ussd_key() -> None:
    line = scrub("from +22376000001 via whatsapp:+22376000002 /ussd?key=s3cr3t&x=1")
    assert "22376000001" not in line and "22376000002" not in line
    assert "s3cr3t" not in line and "key=[redacted]" in line and "x=1" in line


def test_json_lines_carry_known_fields_scrubbed() -> None:
    record = logging.makeLogRecord({
        "name": "bot.test", "levelname": "WARNING", "msg": "fallback for %s",
        "args": ("+22376000001",), "phone": "a1b2c3", "channel": "sms",
        "path": "/webhooks/ussd/africastalking?key=s3cr3t", "body": "Awa Diarra",
    })
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning" and line["phone"] == "a1b2c3" and line["channel"] == "sms"
    assert "22376000001" not in line["message"]
    assert line["path"] == "/webhooks/ussd/africastalking?key=[redacted]"
    assert "body" not in line  # unknown extras (a message body, say) are never written


def test_uvicorns_access_log_is_redacted_if_turned_on() -> None:
    record = logging.makeLogRecord({
        "msg": '%s - "%s %s HTTP/%s" %d',
        "args": ("127.0.0.1:5000", "POST", "/webhooks/ussd/africastalking?key=s3cr3t", "1.1",
                 200),
    })
    RedactQuery().filter(record)
    assert "s3cr3t" not in record.getMessage()


def test_scrub_masks_numbers_in_every_format_a_log_line_may_carry_them() -> None:
    for number in NUMBERS:
        line = scrub(f"name 'Awa' phone={number}, then")
        assert not any(ch.isdigit() for ch in line), (number, line)
        assert line.startswith("name 'Awa' phone=") and line.endswith(", then")


def test_scrub_keeps_what_is_not_a_number() -> None:
    kept = ("at 2026-12-02T11:45:56.123+00:00 took 1234 ms",
            "sid SM0000000000000000000000000000012", "phone a1b2c3d4e5f601234567",
            "HTTP/1.1 200", "port 127.0.0.1:6379")
    for text in kept:
        assert scrub(text) == text


def test_the_access_log_keeps_only_harmless_query_values() -> None:
    from bot.observability import loggable_query

    line = loggable_query("q=%2B223%2076%2012%2034%2001&status=new&limit=50&key=s3cr3t"
                          "&From=whatsapp%3A%2B22376123401&q=Awa+Diarra")
    assert line == ("q=[redacted]&status=new&limit=50&key=[redacted]&From=[redacted]"
                    "&q=[redacted]")


def _logged(message: str, *args: object) -> str:
    record = logging.makeLogRecord({"name": "bot.jobs", "levelname": "WARNING", "msg": message,
                                    "args": args, "error": message % args})
    line = json.loads(JsonFormatter().format(record))
    assert line["error"] == line["message"]  # a string field is scrubbed the same way
    return str(line["message"])


def _our_ids() -> list[str]:
    """Ids as the worker builds them, each typed for a log line."""
    reference = draw_reference()
    stream_id = f"{time.time_ns() // 1_000_000}-{secrets.randbelow(100)}"
    who = privacy.pseudonym("+22376000001", b"k" * 32)[:12]
    sla = notice_job_id(reference, "sla-2")
    return [typed_id("case", reference), typed_id("job", stream_id),
            typed_id("job", "1733600000000-0"), typed_id("outbox", stream_id),
            typed_id("delivery", confirmation_id(reference)),
            typed_id("delivery", message_id(reference, secrets.token_hex(6))),
            typed_id("delivery", followup_id(reference, 3)),
            typed_id("delivery", f"{sla}:webhook"), typed_id("delivery", f"{sla}:sms:{who}"),
            typed_id("delivery", f"{notice_job_id(reference, 'escalated-2')}:webhook"),
            typed_id("delivery", f"{notice_job_id(reference, 'urgent')}:webhook")]


def test_our_typed_ids_survive_the_json_lines() -> None:
    for _ in range(20):  # fresh references, stream ids, entry ids each time
        for typed in _our_ids():
            if re.search(r":\d{12}(?::|$)", typed):
                continue  # an all-digit entry id or pseudonym: masked, as any 12 digits
            logged = _logged("%s attempt %d failed: %s.", typed, 2, "timeout")
            assert logged == f"{typed} attempt 2 failed: timeout.", logged


def test_a_number_after_a_typed_prefix_is_still_masked() -> None:
    reference = draw_reference()
    for prefix in ("case:", "job:", "outbox:", "delivery:confirmation:", "delivery:"):
        for number in NUMBERS:
            line = scrub(f"{prefix}{number} failed")
            assert not any(ch.isdigit() for ch in line), (prefix, number, line)
    bad_check = next(f"7000009{d}" for d in "0123456789" if not is_valid(f"7000009{d}"))
    wrong_shapes = (
        "case:+22376123456", "job:76123456", f"case:{bad_check}", "case:2237612345",
        "job:22376123456-0", "job:0022376123456-0", "outbox:76123456",
        f"case:{reference} 76 12 34 56", f"case:{reference}-76123456",
        f"case:{reference}76123456", "job:1733600000000-0 76 12 34 56",
        f"delivery:confirmation:{bad_check}", f"delivery:message:{reference}:223761234567",
        f"delivery:oncall:{reference}:sla-2:sms:223761234567",
        f"delivery:followup:{reference}:76123456",
    )
    for text in wrong_shapes:
        line = _logged("job %s failed", text)
        assert "[phone]" in line, (text, line)
        for run in re.findall(r"\d{8,}", text.replace(" ", "")):
            assert run not in line.replace(" ", "").replace("-", ""), (text, line)
    assert "7612" not in scrub(f"case:{reference} 76 12 34 56")


def test_a_plus_and_eight_digits_is_masked_wherever_it_stands() -> None:
    glued = ("Unsupported webhook signature algorithm 'ZEBRAALG+22376510009'",
             "x+22376510009", "+22376510009abc", "SM1+223 76 51 00 09", "a_+22376510009_b",
             "algorithm=HMAC+2237651000912345678901", "1+22376510009", "é+33612345678")
    for text in glued:
        line = scrub(text)
        assert "[phone]" in line, (text, line)
        assert not re.search(r"\d{4}", line.replace(" ", "")), (text, line)
    assert scrub("ZEBRAALG+22376510009'") == "ZEBRAALG[phone]'"
    # Fewer than 8 digits after a `+`, or none: not a number, left alone.
    for kept in ("a+1234567", "2026-12-02T11:45:56.123+00:00", "c++17", "x+y"):
        assert scrub(kept) == kept
    # Our typed ids keep their exact shape beside a glued number.
    reference = draw_reference()
    line = _logged("%s then ZEBRA+22376510009", typed_id("case", reference))
    assert line == f"case:{reference} then ZEBRA[phone]"
