"""Every benchmark of BENCHMARKS.md in one run: one markdown table, the machine, sizing.

    python bench/run_all.py [--write BENCHMARKS.md] [--cases 100000] [--phones 2000]

Runs, one after the other (never two at once on this 2-core machine), each
script as a user would (`python bench/<script>.py`), and reads its figures
from what it prints:

- `bench/engine.py`: one engine step on the compiled default flow;
- `bench/processes.py`: USSD hops per CPU-second of `helpline serve` with 1
  and 2 processes, sticky and spread, and Redis's CPU a hop;
- `bench/cases.py`: a triage page at 1,000 and at `--cases` cases, case
  creation and CSV export rates;
- `bench/memory.py` (USSD and SMS): Redis memory per mid-form session and per
  whole return request.

Prints the table, the machine (CPU, cores, memory, load average before and
after, date, commit) and a sizing section computed from the figures. With
`--write FILE` it also replaces the part of FILE between the `run_all` markers
with the same text. Takes about three minutes on the 2-core build machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import redis_server  # noqa: E402

BEGIN = "<!-- run_all: begin (python bench/run_all.py --write BENCHMARKS.md) -->"
END = "<!-- run_all: end -->"
HOPS_A_REQUEST = 16
SESSIONS = 10_000
CASES = 100_000
FORK_HEADROOM = 2
"""Redis needs up to twice its data while it rewrites its append-only file (fork)."""
ONE_REDIS_GB = 8
"""A plain Redis master one would run before sharding (a round, common figure)."""


def run_script(name: str, *args: str) -> tuple[str, float]:
    """`python bench/<name> ARGS`: its stdout and how long it took (s)."""
    began = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "bench" / name), *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"bench/{name} failed (exit {done.returncode})")
    return done.stdout, time.monotonic() - began


def figure(pattern: str, text: str, name: str, group: int = 1) -> float:
    found = re.search(pattern, text)
    if found is None:
        raise SystemExit(f"bench/{name}'s output has no {pattern!r}: update bench/run_all.py\n"
                         + text)
    return float(found.group(group).replace(",", ""))


def engine() -> dict[str, float]:
    out, seconds = run_script("engine.py", "--rounds", "200")
    return {"step_us": figure(r"shared machine\s+median step:\s+([\d.]+)", out, "engine.py"),
            "seconds": seconds}


def cases(total: int) -> dict[str, float]:
    out, seconds = run_script("cases.py", "--cases", str(total), "--rounds", "30")
    name = "cases.py"
    return {
        "cases": total,
        "created_per_s": figure(r"cases in [\d.]+ s: ([\d,]+) cases/s", out, name),
        "page_small_us": figure(r"at 1,000 cases: ([\d,]+) µs", out, name),
        "page_large_us": figure(rf"at {total:,} cases: ([\d,]+) µs", out, name),
        "page_round_trips": figure(rf"at {total:,} cases: [\d,]+ µs, (\d+) round trip", out,
                                   name),
        "export_rows_per_s": figure(r"export: .* ([\d,]+) rows/s", out, name),
        "seconds": seconds,
    }


def memory(channel: str, phones: int) -> dict[str, float]:
    out, seconds = run_script("memory.py", "--phones", str(phones), "--channel", channel)
    return {"phones": phones,
            "session_b": figure(r"mid-form session:\s+(\d+) B", out, "memory.py"),
            "request_b": figure(r"whole return request:\s+(\d+) B", out, "memory.py"),
            "seconds": seconds}


def processes(seconds: int, rounds: int) -> dict[str, Any]:
    out, took = run_script("processes.py", "--json", "--seconds", str(seconds),
                           "--rounds", str(rounds))
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    figures["by_setup"] = {row["setup"]: row for row in figures["results"]}
    figures["took"] = took
    return figures


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in
                      Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        memory_text = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        memory_text = "unknown"
    redis = subprocess.run([redis_server(), "--version"], capture_output=True,
                           text=True).stdout.split()
    version = next((word.split("=")[1] for word in redis if word.startswith("v=")), "?")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "bot",
                            "bench", "flows"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory": memory_text,
            "python": platform.python_version(), "redis": version,
            "commit": commit + (" (with uncommitted changes)" if dirty else "")}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min) / {five:.2f} (5 min)"


def report(results: dict[str, Any]) -> str:
    eng, case, ussd, sms = (results[key] for key in ("engine", "cases", "ussd", "sms"))
    proc = results["processes"]
    rows = proc["by_setup"]
    one, two = rows["1 process, sticky"], rows["2 processes, sticky"]
    spread, reconnect = rows["2 processes, spread"], rows["1 process, new connection a hop"]
    host = results["machine"]

    def hop_row(row: dict[str, Any]) -> str:
        share = row["busiest_worker_share"]
        split = f"; busiest worker {share:.0%} of the CPU" if share is not None else ""
        ratio = ("" if row is one else
                 f" ({row['cpu_us_per_hop'] / one['cpu_us_per_hop']:.2f}× the CPU a hop of "
                 f"1 process, sticky)")
        return (f"{row['cpu_us_per_hop']:,.0f} µs CPU a hop = **{row['hops_per_cpu_second']:,.0f}"
                f" hops per CPU-second**{ratio}; {row['hops_per_second']:,.0f} hops/s, p99 "
                f"{row['p99_ms']:.0f} ms, {row['errors']} errors, {row['wrong']} wrong{split}")

    lines = [
        BEGIN,
        f"Measured {results['date']} on commit {host['commit']}: {host['cpu']}, "
        f"{host['cores']} cores, {host['memory']}, Python {host['python']}, redis-server "
        f"{host['redis']}. Load average before the run {results['load_before']}, after "
        f"{results['load_after']} (the machine is shared: read CPU time a hop before hops/s). "
        f"The run took {results['took']:.0f} s.",
        "",
        "| what | figure | script |",
        "|---|---|---|",
        f"| engine step (compiled default flow) | {eng['step_us']:.1f} µs (median) | "
        "`bench/engine.py` |",
        f"| USSD hop, 1 process, sticky | {hop_row(one)} | `bench/processes.py` |",
        f"| USSD hop, 2 processes, sticky | {hop_row(two)} | `bench/processes.py` |",
        f"| USSD hop, 2 processes, spread (a new connection a hop, either process) | "
        f"{hop_row(spread)} | `bench/processes.py` |",
        f"| USSD hop, 1 process, a new connection a hop (what reconnecting costs) | "
        f"{hop_row(reconnect)} | `bench/processes.py` |",
        f"| Redis CPU a hop (redis-server) | {one['redis_cpu_us_per_hop']:.0f} µs (1 process, "
        f"sticky); {two['redis_cpu_us_per_hop']:.0f} µs (2, sticky); "
        f"{spread['redis_cpu_us_per_hop']:.0f} µs (2, spread) | `bench/processes.py` |",
        f"| lost cases under load | {proc['lost_cases']} ({proc['walks_with_reference']:,} "
        f"walks answered with a reference, {proc['cases_created']:,} cases) | "
        "`bench/processes.py` |",
        f"| triage page at 1,000 vs {case['cases']:,} cases | {case['page_small_us'] / 1000:.1f}"
        f" ms vs {case['page_large_us'] / 1000:.1f} ms (ratio "
        f"{case['page_large_us'] / case['page_small_us']:.2f}), "
        f"{case['page_round_trips']:.0f} round trip | `bench/cases.py` |",
        f"| case creation / CSV export | {case['created_per_s']:,.0f} cases/s / "
        f"{case['export_rows_per_s']:,.0f} rows/s | `bench/cases.py` |",
        f"| Redis memory, mid-form session, USSD / SMS | {ussd['session_b']:,.0f} B / "
        f"{sms['session_b']:,.0f} B (bound 512 B, docs/spec.md §9) | `bench/memory.py` |",
        f"| Redis memory, whole return request (case, indexes, audit), USSD / SMS | "
        f"{ussd['request_b']:,.0f} B / {sms['request_b']:,.0f} B at {ussd['phones']:,} / "
        f"{sms['phones']:,} requests (bound 3,000 B, docs/spec.md §9) | `bench/memory.py` |",
        "",
        *sizing(results),
        END,
    ]
    return "\n".join(lines)


def sizing(results: dict[str, Any]) -> list[str]:
    rows = results["processes"]["by_setup"]
    one, two = rows["1 process, sticky"], rows["2 processes, sticky"]
    spread = rows["2 processes, spread"]
    ussd, sms = results["ussd"], results["sms"]
    per_core = one["hops_per_cpu_second"]
    requests_per_core = per_core / HOPS_A_REQUEST
    sessions_mb = [SESSIONS * figures["session_b"] / 1e6 for figures in (ussd, sms)]
    cases_mb = [CASES * figures["request_b"] / 1e6 for figures in (ussd, sms)]
    redis_hops = 1e6 / max(one["redis_cpu_us_per_hop"], 1e-9)
    web_cores = redis_hops / per_core
    biggest_request = max(ussd["request_b"], sms["request_b"])
    cases_per_redis = ONE_REDIS_GB * 1e9 / FORK_HEADROOM / biggest_request
    two_cost = two["cpu_us_per_hop"] / one["cpu_us_per_hop"]
    spread_cost = spread["cpu_us_per_hop"] / one["cpu_us_per_hop"]
    changing = (spread["cpu_us_per_hop"]
                / rows["1 process, new connection a hop"]["cpu_us_per_hop"])
    return [
        "### Sizing (computed from the figures above)",
        "",
        f"- **Web processes**: one core serves about **{per_core:,.0f} USSD hops a second** "
        f"({one['cpu_us_per_hop']:,.0f} µs of CPU a hop), i.e. ~{requests_per_core:,.0f} "
        f"whole return requests ({HOPS_A_REQUEST} hops) a second, far above a helpline's "
        f"peak. Run one process per core (`helpline serve --workers N` or "
        f"`WEB_CONCURRENCY`): 2 processes cost {two_cost:.2f}× the CPU a hop of one when "
        f"each user stays on one process, {spread_cost:.2f}× when every hop is a new "
        f"connection that either process may take; against 1 process with a new "
        f"connection a hop, changing process costs {changing:.2f}×. No sticky sessions "
        f"are needed for correctness. Size for the gateway's "
        f"concurrency and the 1.5 s hop deadline rather than throughput.",
        f"- **Redis memory**: 10,000 phones in the middle of a form ≈ "
        f"**{sessions_mb[0]:.0f} MB (USSD) / {sessions_mb[1]:.0f} MB (SMS)** (USSD sessions "
        f"expire after 5 minutes, SMS ones after 24 h, drafts after 7 days); 100,000 cases ≈ "
        f"**{cases_mb[0]:.0f} MB (USSD) / {cases_mb[1]:.0f} MB (SMS)** with their indexes, "
        f"answers and audit events (each later operator read or change adds an audit event). "
        f"Give Redis {FORK_HEADROOM}× that for the fork of the append-only rewrite.",
        f"- **When to move to Cluster**: for memory, when the data outgrows one master: at "
        f"{ONE_REDIS_GB} GB for Redis (half of it data, for the fork) that is ~"
        f"{cases_per_redis / 1e6:.1f} million cases at {biggest_request:,.0f} B each, or "
        f"sooner if the append-only rewrite takes too long. For throughput: Redis spent "
        f"{one['redis_cpu_us_per_hop']:.0f} µs of CPU a hop, so one Redis server (one core "
        f"runs its commands and scripts) keeps up with ~{redis_hops:,.0f} hops/s, about "
        f"{web_cores:.0f} web cores' worth; past that, a Cluster spreads the phones (a "
        f"phone's keys share one slot) and the cases (16 shards, so up to 16 masters "
        f"share them) over its masters, and every "
        f"feature runs there (CI). Give each master a replica (case creations wait for it; "
        f"docs/redis.md).",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=CASES)
    parser.add_argument("--phones", type=int, default=2000,
                        help="return requests for bench/memory.py (USSD; SMS gets a quarter)")
    parser.add_argument("--seconds", type=int, default=6, help="a run of bench/processes.py")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of bench/processes.py")
    parser.add_argument("--write", type=Path, metavar="FILE",
                        help="replace the part of FILE between the run_all markers")
    args = parser.parse_args()
    began = time.monotonic()
    results: dict[str, Any] = {"load_before": load(),
                               "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                               "machine": machine()}
    for step, work in (("engine", engine),
                       ("processes", lambda: processes(args.seconds, args.rounds)),
                       ("cases", lambda: cases(args.cases)),
                       ("ussd", lambda: memory("ussd", args.phones)),
                       ("sms", lambda: memory("sms", max(args.phones // 4, 100)))):
        print(f"running {step}…", file=sys.stderr, flush=True)
        results[step] = work()
    results["load_after"] = load()
    results["took"] = time.monotonic() - began
    text = report(results)
    print(text)
    if args.write is not None:
        current = args.write.read_text()
        if BEGIN not in current or END not in current:
            raise SystemExit(f"{args.write} has no run_all markers ({BEGIN} … {END})")
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        args.write.write_text(head + text + tail)
        print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
