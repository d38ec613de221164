"""Alerts at 100,000 subscribers (docs/spec.md §10), on one Redis and on a 3-master Cluster.

    python bench/outreach.py [--subscribers 100000] [--mps 200] [--seconds 60] [--no-cluster]

Figures, not assertions (docs/outreach.md names the goals):

- Redis memory per subscription: `used_memory` (INFO memory, summed over a
  Cluster's masters, after the lazy frees settle, as bench/memory.py reads it)
  before and after the subscriptions are written by the store's script, the one
  a conversation's subscribing hop runs (the record and the counts). Goal <= 150 B.
- Approval: `POST /broadcasts/{id}/approve` through the real app (in process),
  which fixes the audience of every subscriber: its wall time. Goal <= 5 s. And
  the audience's memory a recipient while it waits to be sent.
- Sending: two `helpline worker` processes with `HELPLINE_OUTBOUND_MPS` (200),
  against the local fake Twilio (tests/fake_twilio.py, in a thread of this
  process): the messages it received in a window of `--seconds` (60) that
  starts 5 s after the first, as a share of the rate (goal >= 95 %), each
  worker's share, and the workers' CPU (utime + stime from /proc) per message.
  Meanwhile, what a confirmation would wait behind the broadcast: a few bookings
  of the pace's priority lane. Then the broadcast is cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import privacy
from bot.admin import operators
from bot.admin.operators import Role
from bot.app import create_app
from bot.jobs.pace import MICROS, Lane, Pace
from bot.outreach.subscriptions import COUNTRIES, AlertChannel, Subscription
from bot.settings import Settings
from bot.store import keys
from bot.store.connection import client_for_url, close_client
from bot.store.scripts import batch
from bot.store.subscriptions import SUBSCRIBE
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio, Recorded
from tests.redis_server import RedisClusterSet, RedisServer

API = "/admin/api/v1"
PII_KEY = "bench-outreach-pii-key"
SEED_BATCH = 2000
RAMP_SECONDS = 5.0
LANGUAGES = ("fr", "en", "bm")
TEXTS = {"fr": "Canicule sur la route d'Agadez: buvez, reposez-vous à l'ombre.",
         "en": "Heat wave on the Agadez route: drink, rest in the shade.",
         "bm": "Funteni ba Agadez sira kan: ji min, i lafiɲɛ suma la."}
TICKS = os.sysconf("SC_CLK_TCK")


class TimedTwilio(FakeTwilio):
    """The fake Twilio, noting when each message arrived and from which connection."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    def handle(self, request: Recorded) -> tuple[int, Any]:
        if request.method == "POST":
            with self.lock:
                self.arrivals.append(time.monotonic())
                self.requests.clear()  # 100k requests: keep only their times
        return super().handle(request)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Deployment:
    name: str
    url: str
    ports: list[int]
    stop: Any
    figures: dict[str, str] = field(default_factory=dict)


def start_single(work: Path) -> Deployment:
    server = RedisServer(work / "single", extra=("--appendonly", "no"))
    server.start()
    return Deployment("one Redis", server.url, [server.port], server.stop)


def start_cluster(work: Path) -> Deployment:
    cluster = RedisClusterSet(work / "cluster")
    cluster.start()
    return Deployment("3-master Cluster", cluster.url, cluster.ports, cluster.stop)


async def used_memory(ports: list[int]) -> int:
    await asyncio.sleep(0.3)
    total = 0
    for port in ports:
        node = Redis(port=port)
        info = await node.info("memory")
        role = (await node.info("replication"))["role"]
        await node.aclose()
        if role == "master":
            total += int(info["used_memory"])
    return total


async def seed(redis: Any, count: int) -> None:
    key = PII_KEY.encode()
    for start in range(0, count, SEED_BATCH):
        async with batch(redis) as pipe:
            for number in range(start, min(start + SEED_BATCH, count)):
                phone = f"+2237{number:07d}"
                pseudonym = privacy.pseudonym(phone, key)
                shard = keys.shard_of_phone(pseudonym)
                record = Subscription(COUNTRIES[number % len(COUNTRIES)],
                                      LANGUAGES[number % len(LANGUAGES)], AlertChannel.SMS,
                                      1_790_000_000 + number, "2026-11-29", phone)
                SUBSCRIBE.queue(pipe, [keys.alert_subscriptions(shard), keys.alert_counts(shard)],
                                [pseudonym, record.to_record()])
            await pipe.execute()


@asynccontextmanager
async def admin_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                  timeout=60) as client):
        yield client


def worker(url: str, fake: FakeTwilio, mps: float, work: Path, log: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": url, "HELPLINE_DATA_DIR": str(work),
           "HELPLINE_PII_KEY": PII_KEY, "HELPLINE_PUBLIC_URL": "https://helpline.example",
           "HELPLINE_OUTBOUND_MPS": str(mps), "HELPLINE_QUIET_HOURS": "",
           "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_FROM_NUMBER": FROM_NUMBER, "TWILIO_API_BASE_URL": fake.url}
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


async def run(deployment: Deployment, args: argparse.Namespace, work: Path) -> None:
    figures = deployment.figures
    settings = Settings(redis_url=deployment.url, data_dir=work, quiet_hours="",
                        pii_key=SecretStr(PII_KEY))
    redis = client_for_url(deployment.url)
    try:
        await seed(redis, 1)  # the script loaded (its one record is left in the figure)
        before = await used_memory(deployment.ports)
        started = time.perf_counter()
        await seed(redis, args.subscribers)
        figures["subscriptions written"] = (f"{args.subscribers:,} in "
                                            f"{time.perf_counter() - started:.1f} s")
        after = await used_memory(deployment.ports)
        per = (after - before) / args.subscribers
        figures["memory a subscription"] = f"{per:.0f} B (goal <= 150 B: {per / 150:.2f}x)"

        a = await operators.add_operator(redis, name="sup-a", role=Role.SUPERVISOR,
                                         now=datetime.now(UTC))
        b = await operators.add_operator(redis, name="sup-b", role=Role.SUPERVISOR,
                                         now=datetime.now(UTC))
        async with admin_api(settings) as client:
            made = await client.post(f"{API}/broadcasts", json={"text": TEXTS},
                                     headers={"Authorization": f"Bearer {a}"})
            assert made.status_code == 201, made.text
            broadcast = made.json()
            before = await used_memory(deployment.ports)
            started = time.perf_counter()
            approved = await client.post(f"{API}/broadcasts/{broadcast['id']}/approve",
                                         headers={"Authorization": f"Bearer {b}"})
            seconds = time.perf_counter() - started
            assert approved.status_code == 200, approved.text
            recipients = approved.json()["recipients"]
            figures["approval (audience fixed)"] = (f"{seconds:.2f} s for {recipients:,} "
                                                    f"recipients (goal <= 5 s)")
            audience = (await used_memory(deployment.ports) - before) / max(recipients, 1)
            figures["audience while queued"] = f"{audience:.0f} B a recipient"
            await send(deployment, args, work, client, b, broadcast["id"], redis)
    finally:
        await close_client(redis)


async def send(deployment: Deployment, args: argparse.Namespace, work: Path,
               client: httpx.AsyncClient, token: str, broadcast_id: str, redis: Any) -> None:
    figures = deployment.figures
    fake = TimedTwilio()
    fake.start()
    log_path = work / f"workers-{deployment.name.split()[0]}.log"
    with log_path.open("wb") as log:
        workers = [worker(deployment.url, fake, args.mps, work, log) for _ in range(2)]
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while not fake.arrivals:
                if loop.time() > deadline:
                    raise RuntimeError(f"no message in 120 s; see {log_path}")
                await asyncio.sleep(0.05)
            first = fake.arrivals[0]
            await asyncio.sleep(max(0.0, first + RAMP_SECONDS - time.monotonic()))
            cpu_start = [cpu_seconds(w.pid) for w in workers]
            window_start = time.monotonic()
            pace = Pace(redis, mps=args.mps)
            waits = []
            for _ in range(5):  # what a confirmation would wait behind the broadcast
                await asyncio.sleep(args.seconds / 6)
                booking = await pace.book(Lane.PRIORITY)
                waits.append(booking.wait_us / MICROS * 1000)
            await asyncio.sleep(max(0.0, window_start + args.seconds - time.monotonic()))
            window_end = time.monotonic()
            cpu_end = [cpu_seconds(w.pid) for w in workers]
            with fake.lock:
                sent = sum(1 for t in fake.arrivals if window_start <= t < window_end)
            rate = sent / (window_end - window_start)
            figures["sending rate"] = (f"{rate:.1f} msg/s over {window_end - window_start:.0f} s "
                                       f"= {rate / args.mps:.1%} of {args.mps:.0f} "
                                       f"(goal >= 95 %)")
            cpu = [end - start for start, end in zip(cpu_start, cpu_end, strict=True)]
            figures["worker CPU a message"] = (
                f"{sum(cpu) / max(sent, 1) * 1e6:.0f} µs (workers: "
                + ", ".join(f"{c:.1f} s" for c in cpu) + f" of CPU for {sent:,} messages)")
            figures["a confirmation's wait behind it"] = (
                f"median {statistics.median(waits):.0f} ms, max {max(waits):.0f} ms "
                f"(priority lane; a slot is {1000 / args.mps:.0f} ms)")
            cancelled = await client.post(f"{API}/broadcasts/{broadcast_id}/cancel",
                                          headers={"Authorization": f"Bearer {token}"})
            assert cancelled.status_code == 200, cancelled.text
        finally:
            for process in workers:
                process.send_signal(signal.SIGTERM)
            for process in workers:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--mps", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-cluster", action="store_true")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed")
    results = []
    starts = [start_single] + ([] if args.no_cluster else [start_cluster])
    for start in starts:
        work = Path(tempfile.mkdtemp(prefix="bench-outreach-"))
        deployment = start(work)
        try:
            asyncio.run(run(deployment, args, work))
        finally:
            deployment.stop()
            shutil.rmtree(work, ignore_errors=True)
        results.append(deployment)
    one, five, _ = os.getloadavg()
    print(f"bench/outreach.py: {args.subscribers:,} subscribers, HELPLINE_OUTBOUND_MPS="
          f"{args.mps:.0f}, 2 workers; load average {one:.1f} (1 min), {five:.1f} (5 min)")
    for deployment in results:
        print(f"\n{deployment.name}:")
        for name, value in deployment.figures.items():
            print(f"  {name:34} {value}")


if __name__ == "__main__":
    threading.excepthook = lambda hook: None  # the fake's threads after it stops
    main()
