"""Benchmark: USSD hops/s of `helpline serve` next to ussd-menu-builder (Node), same run.

    python bench/webhooks.py [--seconds 8] [--rounds 3] [--users 16] [--no-peer]

One `helpline serve` process (exactly as deployed: its default server, its
JSON access log, metrics) and, when `node` and `npm` are on the PATH, the Node
peer of `../shared/peers/` (ussd-menu-builder on express, sessions in Redis,
installed with npm into a cache directory outside the repository): each one
process pinned to the same core (`taskset -c 0`), measured one after the
other in interleaved rounds, against the same `redis-server` and with the
same `wrk` (both on the other core). Each simulated user is one wrk thread
with one connection walking the return request in Africa's Talking format
(text = every input so far, joined by `*`), one hop after the answer to the
previous one, a new phone and session for every walk; the product's walk
ends with a case created, the peer's with its reference screen.

Every answer is compared with the one a single user got before the load
(digits aside, as references differ): a different answer, a non-2xx or a
socket error is counted. After the rounds the product's created cases are
counted in Redis against the walks that ended with a reference (lost
answers), and each server's commands per hop are counted with MONITOR on a
few sequential walks (commands run inside Lua scripts are not counted).

Prints per target hops/s and p99 (medians of the rounds), the ratio product /
peer, errors and wrong answers, lost cases and commands per hop, and the
machine's load average before and after (other people's tests share it).
Each server's CPU time a hop (from /proc) gives its capacity per core
("hops/CPU-s"), which other people's load on the machine moves much less than
the hops/s it happened to get.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_PEER_DIR = ROOT.parent / "shared" / "peers"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "helpline-bench"
SECRET = "bench-ussd-secret"
WARM_UP_SECONDS = 2
RUN_WALKS = 20_000
"""Walk numbers each run may use (phones stay new across runs)."""
MONITOR_WALKS = 4

# The product's return request: welcome 1 French; main 2 return; consent 1; the answers;
# summary 1 confirm (END with the reference).
PRODUCT_WALK = ["1", "2", "1", "Awa Diarra", "Mali", "Niger", "Agadez",
                "2", "2", "2", "1", "2", "1", "1", "1", "1"]
# The peer's (its README): main menu, 2 return request, name, nationality, country.
PEER_WALK = ["2", "Amina Diallo", "Malienne", "1"]

WRK_SCRIPT = r"""
-- One wrk thread = one user = one connection; the next hop is sent once the previous
-- one is answered. Answers are compared, digits aside, with the expected ones.
local walk = {%(walk)s}
local expected = {%(expected)s}
local path = "%(path)s"
local first_walk = %(first_walk)d
local phone_prefix = "%(phone_prefix)s"
local threads = {}
local counter = 0

function setup(thread)
  thread:set("user", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function encode(text)
  return (string.gsub(text, "[^%%w%%-_%%.~]", function(c)
    return string.format("%%%%%%02X", string.byte(c))
  end))
end

local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
hop = 0
walk_no = 0
wrong = 0
walks_done = 0
answers = 0

function request()
  local n = first_walk + walk_no
  local phone = string.format("%%s%%02d%%05d", phone_prefix, user, n)
  local session = string.format("bench-%%d-%%d", user, n)
  local text = table.concat(walk, "*", 1, hop)
  local body = "sessionId=" .. session .. "&serviceCode=%%2A384%%2A55%%23&phoneNumber="
    .. encode(phone) .. "&networkCode=61001&text=" .. encode(text)
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  answers = answers + 1
  if status ~= 200 or string.gsub(body, "%%d", "#") ~= expected[hop + 1] then
    wrong = wrong + 1
  end
  hop = hop + 1
  if hop > #walk then
    if status == 200 then walks_done = walks_done + 1 end
    hop = 0
    walk_no = walk_no + 1
  end
end

function done(summary, latency, requests)
  local wrong_total, walks_total, answers_total = 0, 0, 0
  for _, thread in ipairs(threads) do
    wrong_total = wrong_total + thread:get("wrong")
    walks_total = walks_total + thread:get("walks_done")
    answers_total = answers_total + thread:get("answers")
  end
  io.write(string.format(
    "BENCH {\"requests\": %%d, \"answers\": %%d, \"seconds\": %%f, \"p50_ms\": %%f, " ..
    "\"p99_ms\": %%f, \"errors\": %%d, \"non2xx\": %%d, \"wrong\": %%d, \"walks\": %%d}\n",
    summary.requests, answers_total, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status, wrong_total, walks_total))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: int | None, command: Sequence[str]) -> list[str]:
    if core is None:
        return list(command)
    return ["taskset", "-c", str(core), *command]


def cores() -> tuple[int | None, int | None]:
    """(server core, load core): the servers on one, Redis and wrk on another."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return None, None
    return 0, 1


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU time of a process so far (Linux /proc): system is the kernel's
    share (socket reads and writes, epoll, the loopback's TCP stack)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def scratch_redis(work: Path, port: int, core: int | None = None) -> subprocess.Popen[bytes]:
    """A `redis-server` without persistence on `port` (pinned to `core`), for one run."""
    return subprocess.Popen(
        pinned(core, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--dir", str(work)]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


USSD_PATH = "/webhooks/ussd/africastalking"


def ussd_scope(body: bytes) -> dict[str, Any]:
    """The ASGI scope of one USSD hop POSTed with `body`, for loops that drive the app
    directly (no sockets): bench/hop_profile.py, bench/turn.py."""
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": USSD_PATH, "raw_path": USSD_PATH.encode(),
        "query_string": f"key={SECRET}".encode(), "root_path": "",
        "headers": [(b"host", b"bench"),
                    (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "state": {},
    }


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


@dataclass
class Target:
    label: str
    base: str
    path: str
    walk: list[str]
    phone_prefix: str
    process: subprocess.Popen[bytes]
    pid: int
    expected: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def url(self) -> str:
        return self.base + self.path


def wait_for(process: subprocess.Popen[bytes], url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.1)


def post(url: str, fields: dict[str, str]) -> str:
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def walk_once(target: Target, user: int, walk_no: int,
              spans: list[tuple[float, float]] | None = None) -> list[str]:
    """One whole walk, sequentially, as wrk's user `user` would do its walk `walk_no`;
    `spans` gets each hop's start and end (wall clock)."""
    phone = f"{target.phone_prefix}{user:02d}{walk_no:05d}"
    answers = []
    for hop in range(len(target.walk) + 1):
        started = time.time()
        answers.append(post(target.url(), {
            "sessionId": f"bench-{user}-{walk_no}", "serviceCode": "*384*55#",
            "phoneNumber": phone, "networkCode": "61001",
            "text": "*".join(target.walk[:hop]),
        }))
        if spans is not None:
            spans.append((started, time.time()))
    return answers


def normalised(answer: str) -> str:
    return "".join("#" if ch.isdigit() else ch for ch in answer)


def run_wrk(target: Target, *, seconds: int, users: int, first_walk: int, core: int | None,
            script_dir: Path, label: str, redis_pid: int | None = None) -> dict[str, Any]:
    script = script_dir / f"{label}.lua"
    script.write_text(WRK_SCRIPT % {
        "walk": ", ".join(lua_quote(step) for step in target.walk),
        "expected": ", ".join(lua_quote(normalised(answer)) for answer in target.expected),
        "path": target.path,
        "first_walk": first_walk,
        "phone_prefix": target.phone_prefix,
    })
    user_before, system_before = cpu_split(target.pid)
    redis_before = cpu_seconds(redis_pid) if redis_pid else float("nan")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_before = children.ru_utime + children.ru_stime
    out = subprocess.run(
        pinned(core, ["wrk", f"-t{users}", f"-c{users}", f"-d{seconds}s", "--latency",
                      "-s", str(script), target.base]),
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(row for row in out.splitlines() if row.startswith("BENCH "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    result["per_second"] = result["requests"] / result["seconds"]
    user_after, system_after = cpu_split(target.pid)
    hops = max(result["requests"], 1)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["wrk_us_per_hop"] = (children.ru_utime + children.ru_stime - wrk_before) * 1e6 / hops
    result["redis_us_per_hop"] = ((cpu_seconds(redis_pid) if redis_pid else float("nan"))
                                  - redis_before) * 1e6 / hops
    result["cpu_us_per_hop"] = (user_after - user_before
                                + system_after - system_before) * 1e6 / hops
    result["system_us_per_hop"] = (system_after - system_before) * 1e6 / hops
    return result


def lua_quote(text: str) -> str:
    """A Lua string literal of `text` (bytes escaped as decimal)."""
    return '"' + "".join(
        chr(byte) if 32 <= byte < 127 and chr(byte) not in '"\\' else f"\\{byte:03d}"
        for byte in text.encode()
    ) + '"'


# --- Redis: the server, MONITOR, the product's cases ----------------------------------


def redis_client(port: int) -> Any:
    import redis

    return redis.Redis(port=port, decode_responses=True)


def cases_created(port: int) -> int:
    """Cases in the store as this checkout lays them out (per shard when sharded)."""
    from bot.cases.model import CaseKind
    from bot.store import keys

    shards = getattr(keys, "SHARDS", None)
    names = ([keys.cases_by_kind(shard, kind) for shard in shards for kind in CaseKind]
             if shards is not None else [keys.cases_by_kind(kind) for kind in CaseKind])
    client = redis_client(port)
    try:
        return sum(int(client.zcard(name)) for name in names)
    finally:
        client.close()


class Monitor:
    """Counts the commands clients send to Redis (MONITOR), script-internal ones aside."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"MONITOR\r\n")
        self.lines: list[str] = []
        self._buffer = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        time.sleep(0.1)

    def _read(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\r\n")
            self.lines.extend(line.decode("utf-8", "replace") for line in lines)

    def stop(self) -> dict[str, int]:
        time.sleep(0.2)
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        counts: dict[str, int] = {}
        for _, command in self.sent():
            counts[command] = counts.get(command, 0) + 1
        return counts

    def sent(self) -> list[tuple[float, str]]:
        """(Redis's time, command) of each command a client sent, script-internal aside."""
        found = []
        for line in self.lines:
            if not line.startswith("+") or "[" not in line or "]" not in line:
                continue
            client = line[line.index("[") + 1:line.index("]")]
            if client.endswith(" lua"):
                continue  # run inside a script
            command = line[line.index("]") + 1:].strip().split(" ", 1)[0].strip('"').lower()
            found.append((float(line[1:].split(" ", 1)[0]), command))
        return found


BACKGROUND_COMMANDS = frozenset({"info"})
"""Sent by a process's background refresh (the replica count, every 10 s), not by a hop."""


def commands_per_hop(target: Target, redis_port: int) -> tuple[float, dict[str, float]]:
    average, counts, _ = commands_by_hop(target, redis_port)
    return average, counts


def commands_by_hop(target: Target,
                    redis_port: int) -> tuple[float, dict[str, float], list[int]]:
    """Average commands a hop, by command, and the commands of each hop of the walks (by
    the time Redis got them; background ones aside: BACKGROUND_COMMANDS)."""
    monitor = Monitor(redis_port)
    spans: list[tuple[float, float]] = []
    for walk_no in range(MONITOR_WALKS):
        walk_once(target, 99, RUN_WALKS - 1 - walk_no, spans)
    counts = monitor.stop()
    hops = MONITOR_WALKS * (len(target.walk) + 1)
    per_hop = [0] * len(spans)
    starts = [start for start, _ in spans]
    for at, command in monitor.sent():
        if command in BACKGROUND_COMMANDS or not starts or at < starts[0]:
            continue
        per_hop[bisect.bisect_right(starts, at) - 1] += 1  # the hop under way then
    return (sum(counts.values()) / hops,
            {name: round(calls / hops, 2) for name, calls in sorted(counts.items())}, per_hop)


# --- the servers ----------------------------------------------------------------------


def start_product(work: Path, redis_url: str, core: int | None, log: Any,
                  tree: Path = ROOT, label: str = "helpline serve",
                  phone_prefix: str = "+2237") -> Target:
    port = free_port()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("HELPLINE_", "TWILIO_")) and name != "REDIS_URL"}
    env.update(REDIS_URL=redis_url, HELPLINE_USSD_SECRET=SECRET,
               HELPLINE_PII_KEY="bench-pii-key", HELPLINE_DATA_DIR=str(work / "var"),
               PYTHONPATH=str(tree))
    process = subprocess.Popen(
        pinned(core, [sys.executable, "-c",
                      "import sys; from bot.cli import main; sys.exit(main())",
                      "serve", "--port", str(port)]),
        stdout=log, stderr=log, cwd=work, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(process, base + "/healthz")
    return Target(label, base, f"/webhooks/ussd/africastalking?key={SECRET}",
                  PRODUCT_WALK, phone_prefix, process, process.pid)


def peer_install(peer_dir: Path) -> Path | None:
    """The peer installed by npm in a cache directory (reused while its package.json holds)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("node/npm not found: the Node peer is not measured", file=sys.stderr)
        return None
    if not (peer_dir / "package.json").is_file():
        print(f"no peer in {peer_dir} (--peer-dir): the Node peer is not measured",
              file=sys.stderr)
        return None
    digest = hashlib.sha256(b"".join(
        path.read_bytes() for path in sorted(peer_dir.iterdir()) if path.is_file()
    )).hexdigest()[:16]
    installed = CACHE_DIR / f"peer-{digest}"
    if not (installed / "node_modules").is_dir():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="peer-install-", dir=CACHE_DIR))
        for path in peer_dir.iterdir():
            if path.is_file():
                shutil.copy2(path, staging / path.name)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=staging, check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(installed, ignore_errors=True)
        shutil.move(str(staging), installed)
    return installed


def start_peer(installed: Path, redis_url: str, core: int | None, log: Any) -> Target:
    port = free_port()
    env = {**os.environ, "NODE_ENV": "production", "SESSIONS": "redis", "PORT": str(port),
           "REDIS_URL": redis_url}
    process = subprocess.Popen(pinned(core, ["node", "menu_builder_server.js"]),
                               stdout=log, stderr=log, cwd=installed, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_for(process, base + "/")
    return Target("ussd-menu-builder", base, "/ussd/at", PEER_WALK, "+2236", process,
                  process.pid)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def median(runs: list[dict[str, Any]], key: str) -> float:
    values = sorted(run[key] for run in runs)
    return float(values[len(values) // 2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=16, help="at most 99")
    parser.add_argument("--peer-dir", type=Path, default=DEFAULT_PEER_DIR)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--baseline", type=Path, metavar="TREE",
                        help="also serve the product from this checkout (e.g. a git worktree "
                             "of an older commit), measured in the same rounds")
    parser.add_argument("--keep-log", action="store_true", help="print the servers' log path")
    args = parser.parse_args()
    if not 1 <= args.users <= 99:
        parser.error("--users must be 1..99")
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (Debian: apt-get install {tool.split('-')[0]})",
                  file=sys.stderr)
            return 2
    installed = None if args.no_peer else peer_install(args.peer_dir)
    server_core, load_core = cores()
    work = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    redis_port = free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis = scratch_redis(work, redis_port, load_core)
    log = (work / "servers.log").open("wb")
    targets: list[Target] = []
    load_before = load_average()
    try:
        product = start_product(work, redis_url, server_core, log)
        targets.append(product)
        if args.baseline is not None:
            baseline = start_product(work, redis_url, server_core, log, tree=args.baseline,
                                     label="helpline (baseline)", phone_prefix="+2238")
            targets.append(baseline)
        peer = None
        if installed is not None:
            peer = start_peer(installed, redis_url, server_core, log)
            targets.append(peer)
        for target in targets:
            target.expected = walk_once(target, 98, RUN_WALKS - 1)
        for target in targets:
            run_wrk(target, seconds=WARM_UP_SECONDS, users=args.users, first_walk=0,
                    core=load_core, script_dir=work, label=f"{target.phone_prefix}-warm")
        time.sleep(1)  # the hops cut by wrk's end finish
        cases_before = cases_created(redis_port)
        # Interleaved rounds: a noisy neighbour slows both sides, not one.
        for round_no in range(args.rounds):
            for target in targets:
                target.runs.append(run_wrk(
                    target, seconds=args.seconds, users=args.users,
                    first_walk=(round_no + 1) * (RUN_WALKS // (args.rounds + 2)),
                    core=load_core, script_dir=work, label=f"{target.phone_prefix}-{round_no}",
                    redis_pid=redis.pid,
                ))
        # A baseline checkout may lay its cases out otherwise: the product's are counted.
        walks_ended = sum(run["walks"] for run in product.runs)
        time.sleep(1)
        cases = cases_created(redis_port) - cases_before
        per_hop = {target.label: commands_by_hop(target, redis_port) for target in targets}
    finally:
        for target in targets:
            stop(target.process)
        stop(redis)  # type: ignore[arg-type]
        log.close()
    load_after = load_average()

    print(f"USSD return-request walk, {args.users} users (one wrk thread and connection each, "
          f"next hop after the answer), median of {args.rounds} interleaved rounds of "
          f"{args.seconds} s; servers pinned to core {server_core}, Redis and wrk to core "
          f"{load_core}")
    print(f"load average before: {load_before}; after: {load_after}")
    for target in targets:
        print(f"  {target.label} runs (hops/s): "
              + ", ".join(f"{run['per_second']:.0f}" for run in target.runs))
    print(f"{'':20}{'hops/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'wrong':>7}"
          f"{'cmds/hop':>10}{'CPU µs/hop':>12}{'of it sys':>11}{'hops/CPU-s':>12}")
    for target in targets:
        errors = sum(run["errors"] + run["non2xx"] for run in target.runs)
        wrong = sum(run["wrong"] for run in target.runs)
        print(f"{target.label:20}{median(target.runs, 'per_second'):>9.0f}"
              f"{median(target.runs, 'p50_ms'):>9.2f}{median(target.runs, 'p99_ms'):>9.2f}"
              f"{errors:>8}{wrong:>7}{per_hop[target.label][0]:>10.2f}"
              f"{median(target.runs, 'cpu_us_per_hop'):>12.0f}"
              f"{median(target.runs, 'system_us_per_hop'):>11.0f}"
              f"{1e6 / median(target.runs, 'cpu_us_per_hop'):>12.0f}")
    for target in targets:
        hops_per_second = median(target.runs, "per_second")
        redis_us = median(target.runs, "redis_us_per_hop")
        wrk_us = median(target.runs, "wrk_us_per_hop")
        server_busy = hops_per_second * median(target.runs, "cpu_us_per_hop") / 1e4
        load_busy = hops_per_second * (redis_us + wrk_us) / 1e4
        print(f"{target.label}: the load core's CPU a hop: Redis {redis_us:.0f} µs + wrk "
              f"{wrk_us:.0f} µs; busy: server core {server_busy:.0f}%, load core "
              f"{load_busy:.0f}% (hops/s x CPU a hop)")
    for other in targets[1:]:
        speed = median(product.runs, "per_second") / median(other.runs, "per_second")
        cpu = median(product.runs, "cpu_us_per_hop") / median(other.runs, "cpu_us_per_hop")
        print(f"ratio helpline / {other.label}: hops/s {speed:.2f}x, CPU a hop {cpu:.2f}x")
    if peer is not None:
        ratios = [mine["per_second"] / theirs["per_second"]
                  for mine, theirs in zip(product.runs, peer.runs, strict=True)]
        print(f"ratio hops/s helpline / ussd-menu-builder: "
              f"{median(product.runs, 'per_second') / median(peer.runs, 'per_second'):.2f}x "
              f"(per round: {', '.join(f'{ratio:.2f}' for ratio in ratios)}; goal >= 1.0)")
        print(f"ratio p99 helpline / ussd-menu-builder: "
              f"{median(product.runs, 'p99_ms') / median(peer.runs, 'p99_ms'):.2f} "
              f"(goal <= 1.0)")
    print(f"helpline walks answered with a reference: {walks_ended}; cases created: {cases} "
          f"(more by the hops cut at each run's end); lost: {max(0, walks_ended - cases)}")
    for target in targets:
        print(f"Redis commands sent per hop (MONITOR, scripts' own not counted), "
              f"{target.label}: {per_hop[target.label][1]}")
        hops = per_hop[target.label][2]
        walk = len(target.walk) + 1
        print(f"  max per hop {max(hops, default=0)} (goal <= 2; background "
              f"{', '.join(sorted(BACKGROUND_COMMANDS))} aside); hop by hop, first walk: "
              f"{hops[:walk]}")
    if args.keep_log:
        print(f"servers' log: {work / 'servers.log'}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
