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
