"""Benchmark: the HTTP servers a Python team would pick, on one core, serving the same floor.

    python bench/servers.py [--seconds 5] [--rounds 3] [--users 16]

The floor is a bare ASGI app that reads a USSD-sized form body and answers a
short `CON …` screen: what the server itself costs a request. Each server is
one process pinned to core 0 (granian: its one worker, runtime threads
included), wrk (one connection per user) on core 1, interleaved rounds,
medians; CPU µs a request counts the whole process tree from /proc.

Servers: uvicorn with httptools and uvloop (what `helpline serve` runs),
uvicorn with h11 and asyncio, and granian's ASGI interface (when installed:
`pip install granian`) with uvloop, single-threaded runtime.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import webhooks as bench  # noqa: E402  (after the path is set)

FLOOR_APP = textwrap.dedent('''
    BODY = b"CON Aide Migrants\\n1 Infos protection\\n2 Demande de retour"
    HEADERS = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", str(len(BODY)).encode())]

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BODY})
''')
WRK_POST = textwrap.dedent('''
    wrk.method = "POST"
    wrk.body = "sessionId=ATUid_1&serviceCode=%2A384%2A55%23&phoneNumber=%2B22376000000"
      .. "&networkCode=61001&text=1%2A2"
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
''')


def process_tree(pid: int) -> list[int]:
    found = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += process_tree(int(child))
    return found


def tree_cpu(pid: int) -> float:
    return sum(bench.cpu_seconds(one) for one in process_tree(pid))


def servers(port: int, peer: Path | None) -> dict[str, tuple[list[str], str]]:
    """name: (command, path to POST to)."""
    uvicorn = [sys.executable, "-m", "uvicorn", "floor:app", "--port", str(port),
               "--no-access-log", "--log-level", "warning", "--no-server-header"]
    found = {
        "uvicorn + httptools + uvloop": ([*uvicorn, "--http", "httptools", "--loop", "uvloop"],
                                         "/"),
        "uvicorn + h11 + asyncio": ([*uvicorn, "--http", "h11", "--loop", "asyncio"], "/"),
    }
    if shutil.which("granian"):
        found["granian (ASGI, uvloop, st)"] = ([
            "granian", "--interface", "asgi", "--workers", "1", "--port", str(port),
            "--loop", "uvloop", "--runtime-mode", "st", "--http", "1",
            "--log-level", "warning", "--no-access-log", "floor:app"], "/")
    if peer is not None:  # the Node peer's own floor: express, no ussd-menu-builder
        found["express (Node peer's floor)"] = (
            ["env", f"PORT={port}", "SESSIONS=memory", "NODE_ENV=production", "node",
             str(peer / "menu_builder_server.js")], "/floor/express")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--peer-dir", type=Path, default=bench.DEFAULT_PEER_DIR)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    peer = None if args.no_peer else bench.peer_install(args.peer_dir)
    server_core, load_core = bench.cores()
    work = Path(tempfile.mkdtemp(prefix="bench-servers-"))
    (work / "floor.py").write_text(FLOOR_APP)
    (work / "post.lua").write_text(WRK_POST)
    runs: dict[str, list[tuple[float, float, float]]] = {}
    load_before = bench.load_average()
    for round_no in range(args.rounds + 1):  # round 0 warms up
        port = bench.free_port()
        for name, (command, path) in servers(port, peer).items():
            process = subprocess.Popen(bench.pinned(server_core, command), cwd=work,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       env={**os.environ,
                                            "PYTHONPATH": f"{work}{os.pathsep}{ROOT}"})
            try:
                bench.wait_for(process, f"http://127.0.0.1:{port}/")  # type: ignore[arg-type]
                cpu = tree_cpu(process.pid)
                out = subprocess.run(
                    bench.pinned(load_core, ["wrk", f"-t{args.users}", f"-c{args.users}",
                                             f"-d{args.seconds}s", "--latency",
                                             "-s", str(work / "post.lua"),
                                             f"http://127.0.0.1:{port}{path}"]),
                    capture_output=True, text=True, check=True).stdout
                cpu = tree_cpu(process.pid) - cpu
            finally:
                bench.stop(process)  # type: ignore[arg-type]
                time.sleep(0.2)
            requests = int(next(line for line in out.splitlines()
                                if "requests in" in line).split()[0])
            p99 = next(line for line in out.splitlines() if line.strip().startswith("99%"))
            p99_ms = _ms(p99.split()[1])
            if round_no:
                runs.setdefault(name, []).append(
                    (requests / args.seconds, p99_ms, cpu * 1e6 / max(requests, 1)))
    print(f"floor ASGI app, {args.users} connections, median of {args.rounds} interleaved "
          f"rounds of {args.seconds} s; server on core {server_core}, wrk on core {load_core}; "
          f"load average before {load_before}, after {bench.load_average()}")
    print(f"{'':32}{'req/s':>9}{'p99 ms':>9}{'CPU µs/req':>12}")
    for name, results in runs.items():
        def mid(index: int, results: list[tuple[float, float, float]] = results) -> float:
            return sorted(result[index] for result in results)[len(results) // 2]
        print(f"{name:32}{mid(0):>9.0f}{mid(1):>9.2f}{mid(2):>12.0f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


if __name__ == "__main__":
    sys.exit(main())
