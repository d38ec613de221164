"""Benchmark: USSD hops/s through `POST /webhooks/ussd/africastalking`, next to a floor.

    python bench/webhooks.py [--seconds 8] [--rounds 3] [--connections 64] [--users 256]

One server process (the real app, as `helpline serve` runs it: uvloop,
httptools, JSON access log) against a fresh `redis-server`; `wrk` (Debian)
drives concurrent USSD users, each walking the whole return request in
Africa's Talking format (text = every input so far, joined by `*`); a new
phone for every walk, so each walk starts at the welcome screen and ends with
a case created. In the same run, the same load hits a floor endpoint added to
the same app: a bare FastAPI route that parses the same form with `Form()`
and does one Redis GET and one SET.

Prints hops/s and p50/p99 latency of both and their ratio (goal ≥ 90 %), and
per hop: Redis round trips and commands sent by the app, and every command
Redis ran including those inside Lua scripts (from INFO commandstats).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form
from fastapi.responses import PlainTextResponse

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
USSD_PATH = "/webhooks/ussd/africastalking"
FLOOR_PATH = "/bench/floor"
STATS_PATH = "/bench/stats"
SECRET = "bench-ussd-secret"
WARM_UP_SECONDS = 2

# welcome: 1 French; main: 2 return request; consent: 1; the answers; summary: 1 confirm.
WALK = ["1", "2", "1", "Awa Diarra", "Mali", "Niger", "Agadez",
        "2", "2", "2", "1", "2", "1", "1", "1"]

WRK_SCRIPT = r"""
local walk = {%(walk)s}
local users = %(users)d
local first_walk = %(first_walk)d
local path = "%(path)s"
local counter = 0
local thread_no = 0
local threads = 0

function setup(thread)
  thread:set("thread_no", threads)
  threads = threads + 1
end

local function encode(text)
  return (string.gsub(text, "[^%%w%%-_%%.~]", function(c)
    return string.format("%%%%%%02X", string.byte(c))
  end))
end

local hops = #walk + 1
local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}

function request()
  counter = counter + 1
  local user = counter %% users
  local round = math.floor(counter / users)
  local walk_no = first_walk + math.floor(round / hops)
  local hop = round %% hops
  local phone = string.format("%%%%2B223%%d%%04d%%03d", 7 - thread_no, user, walk_no %% 1000)
  local session = string.format("bench-%%d-%%d-%%d", thread_no, user, walk_no)
  local text = table.concat(walk, "*", 1, hop)
  local body = "sessionId=" .. session .. "&serviceCode=%%2A384%%2A55%%23&phoneNumber=" .. phone
    .. "&networkCode=61001&text=" .. encode(text)
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    "BENCH {\"requests\": %%d, \"seconds\": %%f, \"p50_ms\": %%f, \"p99_ms\": %%f, " ..
    "\"errors\": %%d, \"non2xx\": %%d}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the server process ---------------------------------------------------------------


def add_floor(app: FastAPI) -> None:
    """The floor: a bare FastAPI route, the same form parsed by `Form()`, one GET, one SET."""

    @app.post(FLOOR_PATH)
    async def floor(sessionId: Annotated[str, Form()], serviceCode: Annotated[str, Form()],
                    phoneNumber: Annotated[str, Form()], networkCode: Annotated[str, Form()],
                    text: Annotated[str, Form()] = "") -> PlainTextResponse:
        redis = app.state.store.redis
        key = f"bench:floor:{{{phoneNumber}}}"
        before = await redis.get(key)
        await redis.set(key, text, ex=300)
        return PlainTextResponse(f"CON {sessionId} {before or ''}")


def serve(port: int, redis_url: str, data_dir: str) -> None:
    """Child process: the real app plus the floor route, served as `helpline serve` does."""
    import uvicorn
    from pydantic import SecretStr
    from redis.asyncio import client as redis_client

    from bot.app import create_app
    from bot.observability import configure_logging, uvicorn_log_config
    from bot.settings import Settings

    counts = {"round_trips": 0, "sent": 0}
    plain_execute = redis_client.Redis.execute_command
    pipeline_execute = redis_client.Pipeline.execute

    async def counted_command(self: Any, *args: Any, **options: Any) -> Any:
        counts["round_trips"] += 1
        counts["sent"] += 1
        return await plain_execute(self, *args, **options)

    async def counted_pipeline(self: Any, raise_on_error: bool = True) -> Any:
        counts["round_trips"] += 1
        counts["sent"] += len(self.command_stack)
        return await pipeline_execute(self, raise_on_error)

    redis_client.Redis.execute_command = counted_command  # type: ignore[method-assign]
    redis_client.Pipeline.execute = counted_pipeline  # type: ignore[method-assign]

    settings = Settings(redis_url=redis_url, data_dir=Path(data_dir),
                        ussd_secret=SecretStr(SECRET), pii_key=SecretStr("bench-pii-key"))
    app = create_app(settings)

    add_floor(app)

    @app.get(STATS_PATH)
    async def stats() -> dict[str, int]:
        return counts

    configure_logging()
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                access_log=False, log_config=uvicorn_log_config())


# --- the driver ---------------------------------------------------------------------


def wait_for(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def redis_cli(port: int, *args: str) -> str:
    import redis

    client = redis.Redis(port=port, decode_responses=True)
    try:
        if args[0] == "commandstats":
            stats = client.info("commandstats")
            return json.dumps({name.removeprefix("cmdstat_"): value["calls"]
                               for name, value in stats.items()})
        client.execute_command(*args)
        return ""
    finally:
        client.close()


def app_counts(base: str) -> dict[str, int]:
    with urllib.request.urlopen(base + STATS_PATH, timeout=5) as response:
        counts: dict[str, int] = json.loads(response.read())
        return counts


def run_wrk(base: str, path: str, *, seconds: int, connections: int, users: int,
            script_dir: Path, label: str, first_walk: int) -> dict[str, float]:
    """One wrk run; `first_walk` keeps each run's phones and sessions new."""
    script = script_dir / f"{label}.lua"
    script.write_text(WRK_SCRIPT % {
        "walk": ", ".join(json.dumps(step) for step in WALK),
        "users": users,
        "path": path,
        "first_walk": first_walk,
    })
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
         base],
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(row for row in out.splitlines() if row.startswith("BENCH "))
    result: dict[str, float] = json.loads(line.removeprefix("BENCH "))
    result["per_second"] = result["requests"] / result["seconds"]
    return result


def measure(base: str, path: str, redis_port: int, *, seconds: int, connections: int,
            users: int, script_dir: Path, label: str, first_walk: int) -> dict[str, Any]:
    """One measured run, with the Redis work it caused, per hop."""
    redis_before = json.loads(redis_cli(redis_port, "commandstats"))
    app_before = app_counts(base)
    result: dict[str, Any] = run_wrk(base, path, seconds=seconds, connections=connections,
                                     users=users, script_dir=script_dir, label=label,
                                     first_walk=first_walk)
    app_after = app_counts(base)
    redis_after = json.loads(redis_cli(redis_port, "commandstats"))
    executed = {name: redis_after[name] - redis_before.get(name, 0) for name in redis_after}
    executed.pop("info", None)
    hops = result["requests"]
    result["round_trips_per_hop"] = (app_after["round_trips"] - app_before["round_trips"]) / hops
    result["sent_per_hop"] = (app_after["sent"] - app_before["sent"]) / hops
    result["executed_per_hop"] = sum(executed.values()) / hops
    result["executed"] = {name: round(calls / hops, 2) for name, calls in executed.items()
                          if calls}
    result["scripts_per_hop"] = (executed.get("evalsha", 0) + executed.get("eval", 0)) / hops
    return result


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda run: run["per_second"])[len(runs) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--users", type=int, default=256)
    parser.add_argument("--serve", nargs=3, metavar=("PORT", "REDIS_URL", "DATA_DIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.serve[2])
        return 0
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (Debian: apt-get install {tool.split('-')[0]})",
                  file=sys.stderr)
            return 2

    work = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    redis_port, app_port = free_port(), free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    log = (work / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", str(app_port),
         f"redis://127.0.0.1:{redis_port}/0", str(work / "var")],
        stdout=log, stderr=log, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    base = f"http://127.0.0.1:{app_port}"
    try:
        wait_for(base + "/healthz")
        common = {"connections": args.connections, "users": args.users, "script_dir": work}
        paths = {"ussd": f"{USSD_PATH}?key={SECRET}", "floor": FLOOR_PATH}
        for label, path in paths.items():
            run_wrk(base, path, seconds=WARM_UP_SECONDS, label=f"{label}-warm", first_walk=0,
                    **common)
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label in paths}
        # Interleaved rounds: a noisy neighbour slows both sides, not one.
        for round_no in range(args.rounds):
            for label, path in paths.items():
                runs[label].append(measure(base, path, redis_port, seconds=args.seconds,
                                           label=f"{label}-{round_no}",
                                           first_walk=100 * (round_no + 1), **common))
        ussd, floor = median_run(runs["ussd"]), median_run(runs["floor"])
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(20)
        redis.terminate()
        redis.wait(10)
        log.close()

    print(f"USSD return-request walk, {args.connections} connections, {args.users} users, "
          f"median of {args.rounds} interleaved runs of {args.seconds} s, one server process "
          f"(wrk -t1)")
    for label in runs:
        print(f"  {label} runs (hops/s): "
              + ", ".join(f"{run['per_second']:.0f}" for run in runs[label]))
    print(f"{'':24}{'hops/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for label, result in (("webhook (Starlette)", ussd), ("floor (FastAPI GET+SET)", floor)):
        print(f"{label:24}{result['per_second']:>10.0f}{result['p50_ms']:>9.2f}"
              f"{result['p99_ms']:>9.2f}{result['non2xx'] + result['errors']:>9.0f}")
    print(f"ratio webhook/floor: {ussd['per_second'] / floor['per_second']:.0%} (goal ≥ 90 %)")
    print(f"Redis per hop, webhook: {ussd['round_trips_per_hop']:.2f} round trips and "
          f"{ussd['sent_per_hop']:.2f} commands sent (counted in the app); INFO commandstats: "
          f"{ussd['scripts_per_hop']:.2f} EVALSHA/EVAL, {ussd['executed_per_hop']:.2f} commands "
          f"executed in all, inside scripts included (goal <= 3 commands, stretch 1 round trip)")
    print(f"Redis per request, floor: {floor['round_trips_per_hop']:.2f} round trips, "
          f"{floor['executed_per_hop']:.2f} commands")
    print(f"executed per hop by command: {ussd['executed']}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
