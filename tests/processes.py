"""`helpline` as a deployer runs it: a real process, its environment, waiting until it answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.integration.webhooks_support import AUTH_TOKEN, PII_KEY, PUBLIC_URL, USSD_SECRET
from tests.redis_server import free_port

START_SECONDS = 30.0


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any helpline setting, plus `values`."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("HELPLINE_", "TWILIO_"))
           and name not in ("REDIS_URL", "WEB_CONCURRENCY")}
    return {**env, **values}


def prod_env(redis_url: str, **values: str) -> dict[str, str]:
    """Every setting prod requires, on `redis_url`, plus `values`."""
    return clean_env(HELPLINE_ENV="prod", REDIS_URL=redis_url, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                     HELPLINE_PUBLIC_URL=PUBLIC_URL, HELPLINE_USSD_SECRET=USSD_SECRET,
                     HELPLINE_PII_KEY=PII_KEY, **values)


def helpline(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())", *args]


def serve_command() -> tuple[list[str], str]:
    """`helpline serve` on a free port, and its base URL."""
    port = free_port()
    return helpline("serve", "--port", str(port)), f"http://127.0.0.1:{port}"


def wait_until_answering(process: subprocess.Popen[bytes] | subprocess.Popen[str], base: str,
                         path: str = "/healthz") -> None:
    """Wait for `base + path` to answer 200; fail if the process dies or takes too long."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if httpx.get(base + path).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, "the process stopped"
        assert time.monotonic() < deadline, f"{base}{path} not 200 within {START_SECONDS} s"
        time.sleep(0.05)
