"""Where a USSD hop's time goes: the hop budget of bench/README.md.

    python bench/hop_profile.py [--seconds 10] [--users 16] [--cprofile-hops 3000]

1. py-spy (`pip install py-spy`; needs ptrace) samples a `helpline serve`
   pinned to one core while wrk walks the return request (as bench/webhooks.py
   does); each sample is charged to the innermost frame that belongs to a
   budget line (HTTP server, routing, form parse, key check, pseudonym, plan,
   render, session state, Redis, log, metrics...), and the shares are turned
   into µs a hop from the hops/s of the same run (the core is saturated).
2. cProfile of the in-process loop: the same walk driven straight into the
   ASGI app (no sockets, no HTTP parsing) against a real redis-server; prints
   µs a hop and the top functions by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import webhooks as bench

# (budget line, pattern on "function (file:line)"): the innermost frame matching a specific
# line wins; a sample with none is charged to the innermost generic one.
_SPECIFIC = [
    ("log", r"observability\.py|/logging/|access_log|AccessLog|AccessLines|JsonFormatter|\(log_"),
    ("metrics", r"prometheus_client|metrics\.py"),
    ("key check", r"key_matches"),
    ("form parse", r"forms\.py|parse_qsl|read_hop|\(read_form|\(form "),
    ("pseudonym + phone locks", r"privacy\.py|PhoneLocks|\(pseudonym"),
    ("render", r"engine/render\.py"),
    ("plan (turn, engine)", r"bot/engine/|bot/flows/|transitions/"),
    ("session state (decode, encode, digest)", r"bot/store/sessions\.py"),
    ("Redis round trip (client)", r"redis/|hiredis|redis_lane\.py|script_lane\.py"),
    ("conversation (locks, lease, rest)", r"bot/conversation/|bot/store/"),
    ("gateway handler + dispatch", r"bot/channels/|bot/app\.py"),
    ("routing + middleware (FastAPI)", r"starlette/|fastapi/"),
]
_GENERIC = [
    ("HTTP server (parse, write)", r"uvicorn/|httptools|granian|h11"),
    ("event loop", r"asyncio/|uvloop|selectors\.py"),
]
SPECIFIC = [(name, re.compile(pattern)) for name, pattern in _SPECIFIC]
GENERIC = [(name, re.compile(pattern)) for name, pattern in _GENERIC]


def budget_line(stack: str) -> str:
    frames = stack.split(";")
    for rules in (SPECIFIC, GENERIC):
        for frame in reversed(frames):
            for name, pattern in rules:
                if pattern.search(frame):
                    return name
    return "other"


def py_spy(seconds: int, users: int, detail: int) -> None:
    if shutil.which("py-spy") is None:
        print("py-spy not found (pip install py-spy): skipped", file=sys.stderr)
        return
    server_core, load_core = bench.cores()
    work = Path(tempfile.mkdtemp(prefix="hop-profile-"))
    redis_port = bench.free_port()
    redis = bench.scratch_redis(work, redis_port, load_core)
    log = (work / "server.log").open("wb")
    target = None
    try:
        target = bench.start_product(work, f"redis://127.0.0.1:{redis_port}/0", server_core, log)
        target.expected = bench.walk_once(target, 98, bench.RUN_WALKS - 1)
        bench.run_wrk(target, seconds=2, users=users, first_walk=0, core=load_core,
                      script_dir=work, label="warm")
        raw = work / "stacks.txt"
        spy = subprocess.Popen(
            ["py-spy", "record", "--nonblocking", "--rate", "200", "--format", "raw",
             "--duration", str(seconds - 2), "--pid", str(target.pid), "-o", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run = bench.run_wrk(target, seconds=seconds, users=users, first_walk=1000,
                            core=load_core, script_dir=work, label="load")
        spy.wait(30)
    finally:
        if target is not None:
            bench.stop(target.process)
        bench.stop(redis)
        log.close()
    samples: Counter[str] = Counter()
    frames: dict[str, Counter[str]] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            name = budget_line(stack)
            samples[name] += int(count)
            # the function of the budget line's frame, for --detail
            for frame in reversed(stack.split(";")):
                if frame.split(" (")[0] and budget_line(frame) == name:
                    frames.setdefault(name, Counter())[frame] += int(count)
                    break
    total = sum(samples.values())
    per_hop_us = run["cpu_us_per_hop"]
    print(f"py-spy, helpline serve on one core, {users} users: {run['per_second']:.0f} hops/s "
          f"(p99 {run['p99_ms']:.1f} ms), {per_hop_us:.0f} µs of CPU a hop (from /proc); "
          f"{total} samples; load average {bench.load_average()}")
    print(f"{'budget line':40}{'share':>7}{'µs/hop':>8}")
    for name, count in samples.most_common():
        print(f"{name:40}{count / total:>7.1%}{count / total * per_hop_us:>8.0f}")
        for frame, in_frame in frames.get(name, Counter()).most_common(detail):
            print(f"    {in_frame / total * per_hop_us:>6.1f} µs  {frame[:110]}")
    shutil.rmtree(work, ignore_errors=True)


async def drive(app: Any, hops: int) -> float:
    """The walk straight into the ASGI app: returns seconds spent."""
    walk = bench.PRODUCT_WALK
    started = time.perf_counter()
    done = 0
    walk_no = 0
    while done < hops:
        walk_no += 1
        for hop in range(len(walk) + 1):
            body = ("sessionId=cp-" + str(walk_no) + "&serviceCode=%2A384%2A55%23&phoneNumber="
                    + f"%2B2237{walk_no % 10_000_000:07d}" + "&networkCode=61001&text="
                    + "*".join(walk[:hop]).replace(" ", "+")).encode()
            scope = bench.ussd_scope(body)
            sent: list[dict[str, Any]] = []

            async def receive(body: bytes = body) -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
                sent.append(message)

            await app(scope, receive, send)
            if sent[0]["status"] != 200:
                raise RuntimeError(f"hop answered {sent[0]['status']}")
            done += 1
    return time.perf_counter() - started


async def in_process(redis_url: str, data_dir: Path, hops: int) -> None:
    from pydantic import SecretStr

    from bot.app import create_app
    from bot.settings import Settings

    settings = Settings(redis_url=redis_url, data_dir=data_dir,
                        ussd_secret=SecretStr(bench.SECRET), pii_key=SecretStr("bench-pii-key"))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await drive(app, 200)
        profile = cProfile.Profile()
        profile.enable()
        seconds = await drive(app, hops)
        profile.disable()
        plain = await drive(app, hops)
    print(f"\nin-process loop (ASGI app called directly, one hop at a time, real Redis): "
          f"{plain / hops * 1e6:.0f} µs a hop unprofiled, {seconds / hops * 1e6:.0f} µs "
          f"under cProfile")
    stats = pstats.Stats(profile)
    stats.sort_stats("tottime").print_stats(25)


def cprofile(hops: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="hop-cprofile-"))
    redis_port = bench.free_port()
    redis = bench.scratch_redis(work, redis_port)
    try:
        time.sleep(0.3)
        asyncio.run(in_process(f"redis://127.0.0.1:{redis_port}/0", work / "var", hops))
    finally:
        bench.stop(redis)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--cprofile-hops", type=int, default=3000)
    parser.add_argument("--skip-py-spy", action="store_true")
    parser.add_argument("--detail", type=int, default=0,
                        help="also print this many frames of each budget line")
    parser.add_argument("--skip-cprofile", action="store_true")
    args = parser.parse_args()
    if not args.skip_py_spy:
        py_spy(args.seconds, args.users, args.detail)
    if not args.skip_cprofile:
        cprofile(args.cprofile_hops)
    return 0


if __name__ == "__main__":
    sys.exit(main())
