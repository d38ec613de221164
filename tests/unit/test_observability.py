"""Logs: JSON lines without phone numbers or the USSD key."""

from __future__ import annotations

import json
import logging

from bot.observability import JsonFormatter, RedactQuery, scrub


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
    for number in ("+22370000099", "0022370000099", "70000099", "+223 70 00 00 99",
                   "00223 70 00 00 99", "70 00 00 99", "70.00.00.99", "70-00-00-99",
                   "whatsapp:+22370000099", "+33 6 12 34 56 78", "+14155550100"):
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
