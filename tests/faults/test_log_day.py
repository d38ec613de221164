"""A day of traffic leaves no phone number and no answer in the logs (issue 9, acceptance 5).

`helpline serve` runs with prod settings on a real Redis; its log lines (JSON
on stderr, as deployed) are collected while both gateways, operators and
attackers use it: USSD and SMS return requests from numbers in every format,
keywords, operators reading, searching by number, writing notes and messages,
exporting and erasing, and rejected requests (bad signatures, wrong keys,
malformed, oversized and unencodable bodies, wrong tokens, wrong methods).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import httpx
from redis.asyncio import Redis

from bot.admin.operators import Role, add_operator
from bot.channels.routes import SMS_PATH, USSD_PATH
from tests.integration.admin_support import API, T0
from tests.integration.webhooks_support import (
    RETURN_REQUEST,
    USSD_SECRET,
    Gateway,
    reference_in,
)
from tests.processes import prod_env, serve_command, wait_until_answering
from tests.redis_server import RedisServer

NATIONAL = ["76123401", "76123402", "76123403", "76123404", "76123405", "76123406"]
# How each gateway may spell them: E.164, 00-international, national, WhatsApp.
USSD_SENDERS = [f"+223{NATIONAL[0]}", f"00223{NATIONAL[1]}", NATIONAL[2]]
SMS_SENDERS = [f"+223{NATIONAL[3]}", f"whatsapp:+223{NATIONAL[4]}", f"+223{NATIONAL[5]}"]
NAMES = ["Awa Diarra", "Moussa Keita", "Fatoumata Sidibe", "Ibrahim Coulibaly",
         "Mariam Traore", "Oumar Sangare"]
CITY = "Tamanrasset"
NOTE = "Rappeler le frere au 0022376999888 ou +223 76 99 98 87"


def answers(name: str) -> list[str]:
    typed = list(RETURN_REQUEST)
    typed[typed.index("Awa Diarra")] = name
    typed[typed.index("Agadez")] = CITY
    return typed


async def ussd_request(gateway: Gateway, session: str, phone: str, name: str) -> str:
    await gateway.dial(session, phone=phone)
    done = await gateway.press(session, "1", phone=phone)
    for typed in answers(name):
        done = await gateway.press(session, typed, phone=phone)
    return reference_in(done)


async def sms_request(gateway: Gateway, phone: str, name: str) -> str:
    await gateway.text("Bonjour", phone=phone)
    await gateway.text("1", phone=phone)
    done = ""
    for typed in answers(name):
        done = await gateway.text(typed, phone=phone)
    return reference_in(done)


async def a_day(base: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client, \
            httpx.AsyncClient(base_url=base, timeout=10,
                              headers={"Authorization": f"Bearer {token}"}) as admin:
        gateway = Gateway(client)
        references = [await ussd_request(gateway, f"ATUid_day{i}", phone, NAMES[i])
                      for i, phone in enumerate(USSD_SENDERS)]
        references += [await sms_request(gateway, phone, NAMES[3 + i])
                       for i, phone in enumerate(SMS_SENDERS[:2])]
        last = SMS_SENDERS[2]
        await gateway.text("Bonjour", phone=last)
        await gateway.text(f"SUIVI {references[3][:4]}-{references[3][4:]}", phone=last)
        await gateway.text(f"Je suis {NAMES[5]} a {CITY}, mon numero {last}", phone=last)
        await gateway.text("STOP", phone=last)
        await gateway.text("EFFACER", phone=SMS_SENDERS[1])
        await gateway.text("1", phone=SMS_SENDERS[1])

        # Operators at work.
        assert (await admin.get(f"{API}/cases")).status_code == 200
        for reference in references[:4]:
            assert (await admin.get(f"{API}/cases/{reference}")).status_code == 200
            assert (await admin.get(f"{API}/cases/{reference}/events")).status_code == 200
        for query in (USSD_SENDERS[0], USSD_SENDERS[1], NATIONAL[2], "76 12 34 04",
                      "+223 76 12 34 01", NAMES[0], CITY):
            assert (await admin.get(f"{API}/search", params={"q": query})).status_code == 200
        note = await admin.post(f"{API}/cases/{references[0]}/notes", json={"text": NOTE})
        assert note.status_code == 201
        await admin.post(f"{API}/cases/{references[0]}/messages", json={"text": NOTE})
        await admin.patch(f"{API}/cases/{references[0]}", json={"status": "contacted"})
        assert (await admin.get(f"{API}/cases/export.csv")).status_code == 200
        assert (await admin.delete(f"{API}/cases/{references[2]}")).status_code == 200

        # Rejected: forged, malformed, oversized, unencodable, unauthenticated, wrong method.
        forged = await gateway.sms(f"{NAMES[0]} {CITY}", phone=USSD_SENDERS[0], signed_url=None)
        assert forged.status_code == 403
        wrong_key = await gateway.hop("ATUid_x", "1", phone=USSD_SENDERS[1], key="guess")
        assert wrong_key.status_code == 403
        malformed = await client.post(USSD_PATH, params={"key": USSD_SECRET},
                                      content=f"phoneNumber={USSD_SENDERS[0]}&text=%ff%fe",
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert malformed.status_code == 400
        oversized = await client.post(SMS_PATH, data={"From": USSD_SENDERS[0],
                                                      "Body": NAMES[1] * 2000})
        assert oversized.status_code == 413
        unencodable = await admin.post(
            f"{API}/cases/{references[1]}/notes", headers={"Content-Type": "application/json"},
            content=('{"text": "' + NOTE + ' \\ud800 ' + NAMES[1] + '"}').encode())
        assert unencodable.status_code == 422
        too_long = await admin.post(f"{API}/cases/{references[1]}/notes",
                                    json={"text": (NOTE + NAMES[1]) * 100})
        assert too_long.status_code == 422
        wrong_token = await client.get(f"{API}/search", params={"q": USSD_SENDERS[0]},
                                       headers={"Authorization": f"Bearer {NATIONAL[0]}"})
        assert wrong_token.status_code == 401
        assert (await client.get(SMS_PATH, params={"From": USSD_SENDERS[0]})).status_code == 405


def test_a_day_of_traffic_logs_no_number_and_no_answer(
        redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.flush()

    async def operator() -> str:
        redis = Redis.from_url(redis_server.url, decode_responses=True)
        try:
            return await add_operator(redis, name="sam", role=Role.ADMIN, now=T0)
        finally:
            await redis.aclose()

    token = asyncio.run(operator())
    command, base = serve_command()
    log_file = tmp_path / "serve.log"
    with log_file.open("w") as sink:
        server = subprocess.Popen(command, env=prod_env(redis_server.url), cwd=tmp_path,
                                  stdout=sink, stderr=sink)
        try:
            wait_until_answering(server, base)
            asyncio.run(a_day(base, token))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    logs = log_file.read_text()
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert len(lines) > 100, logs[-2000:]  # the access log saw the day
    leaks = [
        (secret, line) for line in logs.splitlines()
        for secret in (*NATIONAL, "76999888", "76999887", "99 98 87", "12 34 0",
                       *NAMES, CITY, "Rappeler", "frere", USSD_SECRET, token)
        if secret in line
    ]
    assert leaks == [], leaks[:5]
