"""Follow-up after return at scale (docs/spec.md §11), on a real Redis server started for the run.

    python bench/followup.py [--cases 100000] [--rounds 30] [--walk]

Seeds return requests in steps up to `--cases` (10k, 30k, 100k by default), each
returned and given its three check-ins (`HELPLINE_FOLLOWUP_DAYS` 30,90,180) by the
product's own scheduling script, and prints at each step:

- Redis memory a scheduled check-in costs: the follow-up records and the due index
  (`MEMORY USAGE` of their keys, every element counted), and the whole `used_memory`
  growth of scheduling (with the audit event it writes), per check-in (goal ≤ 100 B);
- the time to find the check-ins due in a minute (a burst of 100 cases due in it, the
  rest spread over a year), the worker's one round trip over the 16 shards: median of
  `--rounds` (goal ≤ 50 ms, flat from 10k to 100k);
- the programme report over every case (read and computed, as the API does, from the
  facts the worker keeps): median of a few runs (goal ≤ 2 s at 100k), with the memory of
  those facts a case and the time to write one.

`--walk` prints the survey as a migrant gets it, by SMS and by call, in French and in
Bambara, through the real conversation loop. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

REPO_ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, REPO_ROOT)

from bot.admin.reports import programme  # noqa: E402
from bot.cases import report  # noqa: E402
from bot.cases.model import CaseKind, CaseStatus, NewCase  # noqa: E402
from bot.store import cases, keys  # noqa: E402
from bot.store import followups as store  # noqa: E402
from bot.store.scripts import batch  # noqa: E402

BATCH = 1000
DAYS = (30, 90, 180)
TTL = 3 * 24 * 3600
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BURST = 100
"""Cases whose first check-in is due in the measured minute."""
NATIONALITIES = ["Mali", "mali", "Guinée", "Côte d'Ivoire", "Sénégal", "Burkina Faso"]
COUNTRIES = ["Niger", "Libye", "Algérie", "Mauritanie", "Maroc"]


def new_case(rng: random.Random, number: int) -> NewCase:
    return NewCase(
        kind=CaseKind.RETURN_REQUEST, phone=f"+2237{number:07d}", language="fr",
        channel=rng.choice(["ussd", "sms"]),
        answers={"name": f"Person {number}", "nationality": rng.choice(NATIONALITIES),
                 "country": rng.choice(COUNTRIES), "city": "Agadez",
                 "under_18": "yes" if rng.random() < 0.05 else "no",
                 "medical": "yes" if rng.random() < 0.1 else "no", "sms_safe": "yes",
                 "followup_consent": "yes"},
        created_at=T0 + timedelta(minutes=number % (300 * 24 * 60)))


async def seed(redis: Redis, rng: random.Random, start: int, stop: int) -> list[str]:
    """Create cases `start`..`stop` (the product's creation script), status `returned`."""
    created: list[str] = []
    for first in range(start, stop, BATCH):
        async with batch(redis) as pipe:
            for number in range(first, min(first + BATCH, stop)):
                cases.queue_create_case(pipe, new_case=new_case(rng, number),
                                        candidates=cases.draw_candidates(number % keys.CASE_SHARDS),
                                        idempotency_key=None, pii_key=b"bench")
            references = [cases.create_case_result(raw) for raw in await pipe.execute()]
        async with redis.pipeline(transaction=False) as pipe:
            for reference in references:  # a shortcut: the lifecycle is not what is measured
                pipe.hset(keys.case(reference), "status", str(CaseStatus.RETURNED))
            await pipe.execute()
        created += references
    return created


def returned_at(rng: random.Random, number: int, minute: int) -> int:
    """A burst due in the measured minute; the rest returned over a year, due after it."""
    if number < BURST:
        return minute - DAYS[0] * 86400 + rng.randrange(50)
    return minute + 3600 + rng.randrange(365 * 86400)


async def schedule(redis: Redis, rng: random.Random, references: list[str], offset: int,
                   minute: int) -> None:
    for first in range(0, len(references), BATCH):
        async with batch(redis) as pipe:
            for index, reference in enumerate(references[first:first + BATCH], start=first):
                store.CHANGE.queue(pipe, *store.schedule_call(
                    reference=reference, returned_at=returned_at(rng, offset + index, minute),
                    consent_answer="followup_consent", consent_yes="yes", days=DAYS,
                    channel="s", ttl=TTL))
            await pipe.execute()


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def key_bytes(redis: Redis, *makers: object) -> int:
    """MEMORY USAGE (every element counted) of these keys of every shard."""
    total = 0
    for shard in keys.SHARDS:
        for make in makers:
            key = make(shard)  # type: ignore[operator]
            total += int(await redis.memory_usage(key, samples=0) or 0)
    return total


async def followup_bytes(redis: Redis) -> int:
    return await key_bytes(redis, keys.followups, keys.followups_due)


async def refresh_facts(redis: Redis, references: list[str]) -> tuple[float, float]:
    """What the worker does for cases new in the audit: their report facts. Seconds, and
    bytes of facts a case."""
    before = await key_bytes(redis, keys.report_facts)
    began = time.perf_counter()
    for first in range(0, len(references), BATCH):
        await report.refresh(redis, references[first:first + BATCH])
    seconds = time.perf_counter() - began
    return seconds, (await key_bytes(redis, keys.report_facts) - before) / len(references)


async def due_ms(redis: Redis, minute: int, rounds: int) -> tuple[float, int]:
    """Median ms of the worker's look at what is due (one round trip, 16 shards)."""
    costs, found = [], 0
    for _ in range(rounds):
        began = time.perf_counter()
        due = await store.due(redis, now=minute + 59, ttl=TTL)
        costs.append((time.perf_counter() - began) * 1000)
        found = sum(len(d.send) for d in due)
    return statistics.median(costs), found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def report_seconds(redis: Redis, redis_pid: int, runs: int = 3) -> tuple[float, float]:
    """Median wall seconds of the report, and the least CPU seconds it took (Redis and
    this process): on a shared machine the wall time says mostly how busy it was."""
    walls, cpus = [], []
    for _ in range(runs):
        began, redis_cpu, own_cpu = time.perf_counter(), cpu_seconds(redis_pid), \
            time.process_time()
        await programme(redis, start="2026-01", end="2026-12")
        walls.append(time.perf_counter() - began)
        cpus.append(cpu_seconds(redis_pid) - redis_cpu + time.process_time() - own_cpu)
    return statistics.median(walls), min(cpus)


async def measure(total: int, rounds: int) -> None:
    from tests.redis_server import RedisServer

    steps = sorted({step for step in (10_000, 30_000, total) if step <= total})
    rng = random.Random(2026)
    minute = int((T0 + timedelta(days=400)).timestamp()) // 60 * 60
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory))
        server.start()
        redis = Redis.from_url(server.url, decode_responses=True)
        redis_pid = int((await redis.info("server"))["process_id"])
        try:
            print(f"load average {os.getloadavg()[0]:.2f}; check-ins at {DAYS} days; "
                  f"a burst of {BURST} cases due in the measured minute")
            print(f"{'cases':>8} {'check-ins':>10} {'record+index':>13} {'all':>6} "
                  f"{'due (ms)':>9} {'found':>6} {'report (s)':>11} {'its CPU (s)':>12} "
                  f"{'facts/case':>11} {'µs/fact':>8}")
            done = 0
            for step in steps:
                references = await seed(redis, rng, done, step)
                fact_seconds, fact_bytes = await refresh_facts(redis, references)
                before, before_keys = await used_memory(redis), await followup_bytes(redis)
                await schedule(redis, rng, references, done, minute)
                grown = await used_memory(redis) - before
                kept = await followup_bytes(redis) - before_keys
                checkins = len(references) * len(DAYS)
                cost, found = await due_ms(redis, minute, rounds)
                seconds, cpu = await report_seconds(redis, redis_pid)
                print(f"{step:>8,} {step * len(DAYS):>10,} {kept / checkins:>11.1f} B "
                      f"{grown / checkins:>4.0f} B {cost:>9.2f} {found:>6} {seconds:>11.2f} "
                      f"{cpu:>12.2f} {fact_bytes:>9.0f} B "
                      f"{fact_seconds / len(references) * 1e6:>8.1f}")
                done = step
        finally:
            await redis.aclose()
            server.stop()
    print("record+index: MEMORY USAGE of the follow-up hashes and due indexes, per check-in "
          "(goal ≤ 100 B); all: used_memory growth while scheduling; report: median wall "
          "time (goal ≤ 2 s at 100k), its CPU: Redis's and the client's, least of 3 runs; "
          "facts: what the report reads of a case, kept by the worker from the audit (bytes "
          "a case, and the worker's time to write one)")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


async def walk() -> None:
    """The survey through the real conversation loop: SMS and call, French and Bambara."""
    from bot.conversation import Conversation, InboundMessage
    from bot.engine import speech
    from bot.engine.session import Opening
    from bot.engine.survey import FOLLOWUP_ANSWER
    from bot.flows.checked import load_checked
    from bot.settings import DEFAULT_FLOW, Settings
    from bot.types import Channel
    from tests.redis_server import RedisServer

    # start; income some, debt heavy, housing for now, services yes, community well, safe not
    # always, distress nearly always (an alarm: the call offered at once); yes, call me
    keys_pressed = ["1", "2", "3", "2", "1", "1", "2", "3", "1"]
    compiled = load_checked(DEFAULT_FLOW)
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory))
        server.start()
        redis = Redis.from_url(server.url, decode_responses=True)
        try:
            conversation = Conversation(redis=redis, compiled=compiled, settings=Settings(
                redis_url=server.url, data_dir=Path(directory)))
            for channel in (Channel.SMS, Channel.VOICE):
                for language in ("fr", "bm"):
                    number = 1 + 2 * (channel is Channel.VOICE) + (language == "bm")
                    phone = f"+2237600000{number}"
                    print(f"\n===== {channel.value.upper()} check-in in {language} "
                          f"(keys {' '.join(keys_pressed)}) =====")
                    opening = Opening(compiled.flow.followup or "", language,
                                      {FOLLOWUP_ANSWER: f"12345674.{number}"})
                    reply = await conversation.handle(InboundMessage(
                        channel, phone, "", restart=True, opening=opening,
                        message_id=f"walk-{channel}-{language}"))
                    for index, key in enumerate([None, *keys_pressed]):
                        if key is not None:
                            reply = await conversation.handle(InboundMessage(
                                channel, phone, key,
                                message_id=f"walk-{channel}-{language}-{index}"))
                            print(f"  [{'presses' if channel is Channel.VOICE else 'texts'} "
                                  f"{key}]")
                        if channel is Channel.VOICE:
                            script = speech.script_of(reply, compiled.flow, language)
                            print("  « " + " ".join(p.text for p in script.parts) + " »")
                        else:
                            print("  " + reply.text.replace("\n", "\n  "))
        finally:
            await redis.aclose()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--walk", action="store_true", help="print the survey walks instead")
    options = parser.parse_args()
    asyncio.run(walk() if options.walk else measure(options.cases, options.rounds))


if __name__ == "__main__":
    main()
