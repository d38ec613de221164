"""`helpline serve` as a deployer runs it: prod fail-fast, then a real process on a port."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx

from tests.integration.webhooks_support import USSD_SECRET
from tests.processes import clean_env, helpline, prod_env, serve_command, wait_until_answering
from tests.redis_server import RedisServer

PROD_SETTINGS = ("REDIS_URL", "TWILIO_AUTH_TOKEN", "HELPLINE_PUBLIC_URL",
                 "HELPLINE_USSD_SECRET", "HELPLINE_PII_KEY")


def test_prod_refuses_to_start_naming_each_missing_setting(tmp_path: Path) -> None:
    done = subprocess.run(helpline("serve"), env=clean_env(HELPLINE_ENV="prod"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == len(PROD_SETTINGS)
    for name, line in zip(PROD_SETTINGS, lines, strict=True):
        assert name in line
    assert "Traceback" not in done.stderr


def test_prod_names_only_what_is_missing(tmp_path: Path) -> None:
    env = clean_env(HELPLINE_ENV="prod", REDIS_URL="redis://127.0.0.1:1/0",
                    TWILIO_AUTH_TOKEN="x", HELPLINE_PUBLIC_URL="https://h.example",
                    HELPLINE_USSD_SECRET="s")
    done = subprocess.run(helpline("serve"), env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == ["HELPLINE_ENV=prod requires HELPLINE_PII_KEY"]


def test_serve_answers_gateways_and_logs_without_numbers_or_secrets(
        redis_server: RedisServer, tmp_path: Path) -> None:
    command, base = serve_command()
    server = subprocess.Popen(command, env=prod_env(redis_server.url), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_answering(server, base)
        form = {"sessionId": "ATUid_serve", "serviceCode": "*384*55#",
                "phoneNumber": "+22376123456", "networkCode": "61001", "text": ""}
        ussd = httpx.post(base + "/webhooks/ussd/africastalking", params={"key": USSD_SECRET},
                          data=form)
        assert ussd.status_code == 200 and ussd.text.startswith("CON ")
        form["text"] = "1*2*1*Fatoumata Keita"
        assert httpx.post(base + "/webhooks/ussd/africastalking",
                          params={"key": USSD_SECRET}, data=form).status_code == 200
        assert httpx.post(base + "/webhooks/ussd/africastalking", params={"key": "nope"},
                          data=form).status_code == 403
    finally:
        server.send_signal(signal.SIGINT)
        _, logs = server.communicate(timeout=30)
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert lines, logs
    access = [line for line in lines if line["logger"] == "helpline.access"]
    assert any(line["path"].startswith("/webhooks/ussd/africastalking") for line in access)
    assert USSD_SECRET not in logs and "nope" not in logs
    assert "22376123456" not in logs and "Fatoumata" not in logs


def test_serve_writes_no_number_a_stranger_puts_in_a_query_or_a_header(
        redis_server: RedisServer, tmp_path: Path) -> None:
    """Unauthenticated requests as anyone can send them: a number in a query parameter's
    name (both lanes), or in the signature-settings header's algorithm (every Twilio
    webhook) is refused or answered, and never written to the log; an odd recording path
    is a 404, not a 5xx."""
    command, base = serve_command()
    server = subprocess.Popen(command, env=prod_env(redis_server.url), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_answering(server, base)
        form = {"MessageSid": "SM1", "CallSid": "CA1", "From": "+22376510001",
                "MessageStatus": "delivered"}
        assert httpx.post(base + "/webhooks/twilio/sms?22376960005",
                          data=form).status_code == 403
        assert httpx.post(base + "/webhooks/ussd/africastalking?key=K&%2B22376960002=1",
                          data=form).status_code == 403
        assert httpx.get(base + "/healthz?ZEBRA%2B22376960003").status_code == 200
        for path in ("/webhooks/twilio/sms", "/webhooks/twilio/voice",
                     "/webhooks/twilio/status"):
            refused = httpx.post(base + path, data=form, headers={
                "X-Twilio-Webhooks-Signature-Settings": "algorithm=ZEBRAALG+22376510009",
                "X-Twilio-Signature": "x"})
            assert refused.status_code == 403, path
        for odd in ("/audio/x%00.mp3", "/audio/" + "a" * 300 + ".mp3"):
            assert httpx.get(base + odd).status_code == 404, odd
    finally:
        server.send_signal(signal.SIGINT)
        _, logs = server.communicate(timeout=30)
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    access = [line["path"] for line in lines if line["logger"] == "helpline.access"]
    assert "/webhooks/twilio/sms?[phone]=[redacted]" in access, access
    assert "/webhooks/ussd/africastalking?key=[redacted]&[phone]=[redacted]" in access
    assert "/healthz?ZEBRA[phone]=[redacted]" in access
    assert "Traceback" not in logs and "ZEBRAALG" not in logs
    for number in ("22376960005", "22376960002", "22376960003", "22376510009",
                   "22376510001"):
        assert number not in logs, number


def test_serve_trusts_forwarded_headers_only_from_forwarded_allow_ips(
        redis_server: RedisServer, tmp_path: Path) -> None:
    """uvicorn takes `X-Forwarded-Proto`/`-For` from the addresses in FORWARDED_ALLOW_IPS
    only (127.0.0.1 unless set, docs/deployment.md). Trusted: `https` brings HSTS, and each
    forwarded address is its own client for the wrong-token throttle. Not trusted: both
    headers are ignored (no HSTS; rotating X-Forwarded-For does not dodge the throttle)."""
    form = {"sessionId": "ATUid_hsts", "serviceCode": "*384*55#",
            "phoneNumber": "+22376123457", "networkCode": "61001", "text": ""}
    for allowed, trusted in ((None, True), ("192.0.2.10", False)):
        redis_server.flush()
        command, base = serve_command()
        env = prod_env(redis_server.url, HELPLINE_AUTH_FAILURE_LIMIT="2",
                       **({"FORWARDED_ALLOW_IPS": allowed} if allowed else {}))
        server = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            wait_until_answering(server, base)
            https = {"X-Forwarded-Proto": "https"}
            answers = [
                httpx.get(base + "/healthz", headers=https),
                httpx.post(base + "/webhooks/ussd/africastalking", params={"key": USSD_SECRET},
                           data=form, headers=https),
            ]
            plain = httpx.get(base + "/healthz")
            guesses = [httpx.get(base + "/admin/api/v1/cases", headers={
                "Authorization": "Bearer wrong", "X-Forwarded-For": f"203.0.113.{n}"}
            ).status_code for n in range(1, 5)]
        finally:
            server.send_signal(signal.SIGINT)
            server.communicate(timeout=30)
        assert [answer.status_code for answer in answers] == [200, 200]
        for answer in [*answers, plain]:
            assert answer.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in plain.headers
        for answer in answers:
            assert ("strict-transport-security" in answer.headers) is trusted
            if trusted:
                assert answer.headers["strict-transport-security"] == "max-age=31536000"
        assert guesses == ([401] * 4 if trusted else [401, 401, 429, 429])
