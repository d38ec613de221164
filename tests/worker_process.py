"""Real `helpline worker` processes sending through the fake Twilio, for the tests that kill
one mid-send (SIGKILL once Twilio has taken a message, before its answer reaches the
worker), start another, and check that each message went exactly once.

    with worker_processes(settings, tmp_path, HELPLINE_OUTBOUND_MPS="40") as workers:
        workers.fake.plan(held)
        first = workers.start()
        await workers.kill_mid_send(first, held)
        second = workers.start()
        await eventually(done, "the second worker to finish")
        await workers.stop(second)
    workers.sent_once_each(phones)
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bot.settings import Settings
from tests.fake_rest import Held
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio, fake_twilio
from tests.processes import clean_env, helpline

PATIENCE_SECONDS = 60.0
# The real redelivery, made short: a job its worker left unfinished runs again this long
# after that worker last touched it (HELPLINE_JOB_REDELIVERY_SECONDS, 60 s by default).
REDELIVERY_SECONDS = 2


async def eventually(condition: Callable[[], object], what: str) -> None:
    """Wait until `condition` (a function, maybe async) holds; fail after PATIENCE_SECONDS."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE_SECONDS
    while not await _holds(condition):
        assert loop.time() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.05)


async def _holds(condition: Callable[[], object]) -> bool:
    result = condition()
    if asyncio.iscoroutine(result):
        result = await result
    return bool(result)


@dataclass
class Workers:
    """`helpline worker` processes on `settings`' Redis, Twilio pointed at `fake`, each
    configured through the environment (plus `env`) and writing to one log."""

    settings: Settings
    fake: FakeTwilio
    log_path: Path
    log_file: IO[bytes]
    env: dict[str, str]
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> subprocess.Popen[bytes]:
        assert self.settings.redis_url is not None
        env = clean_env(
            REDIS_URL=self.settings.redis_url,
            HELPLINE_DATA_DIR=str(self.settings.data_dir),
            HELPLINE_PUBLIC_URL="https://helpline.example",
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_FROM_NUMBER=FROM_NUMBER,
            TWILIO_API_BASE_URL=self.fake.url,
            HELPLINE_JOB_REDELIVERY_SECONDS=str(REDELIVERY_SECONDS),
            **self.env)
        process = subprocess.Popen(helpline("worker"), env=env, stdout=self.log_file,
                                   stderr=subprocess.STDOUT)
        self.started.append(process)
        return process

    async def kill_mid_send(self, process: subprocess.Popen[bytes], held: Held) -> None:
        """Once Twilio has taken the message `held` was planned for, SIGKILL `process`:
        Twilio's answer never reaches it. Then Twilio answers, to nobody."""
        assert await asyncio.to_thread(held.arrived.wait, PATIENCE_SECONDS), \
            "no message reached Twilio"
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, PATIENCE_SECONDS)
        held.release.set()

    async def stop(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM, as a deployer stops a worker: it exits 0."""
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, PATIENCE_SECONDS) == 0

    def sent_once_each(self, phones: Iterable[str]) -> None:
        """Each of `phones` got one message, and Twilio was asked to send no other; the
        worker that took over asked Twilio what the killed one had left uncertain."""
        phones = list(phones)
        for phone in phones:
            assert len(self.fake.sent_to(phone)) == 1, phone
        assert len(self.fake.creates) == len(phones)
        assert self.fake.lists

    def log(self, *, private: Iterable[str]) -> str:
        """The workers' log, checked to hold none of `private` (phone numbers also
        without their +, texts of messages)."""
        logged = self.log_path.read_text()
        for secret in private:
            assert secret not in logged and secret.lstrip("+") not in logged
        return logged


@contextmanager
def worker_processes(settings: Settings, tmp_path: Path, **env: str) -> Iterator[Workers]:
    """Workers (and their fake Twilio) for the `with` block; any still running at its end
    is killed."""
    log_path = tmp_path / "worker.log"
    with fake_twilio() as fake, log_path.open("wb") as log_file:
        workers = Workers(settings, fake, log_path, log_file, env)
        try:
            yield workers
        finally:
            for process in workers.started:
                if process.poll() is None:
                    process.kill()
                    process.wait()
