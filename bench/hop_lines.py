"""Lines of `bot/` a USSD hop runs, beyond start-up: what a newcomer must read to follow one.

    python bench/hop_lines.py [--walks 3] [--top 40] [--tree <checkout>]

Two `helpline serve` processes under `coverage run` (statement coverage of `bot/`),
each against its own scratch `redis-server`:

- idle: started, waited for (its port accepts a connection, no HTTP request), stopped;
- traffic: the same, answering the USSD return request (16 hops, the last one
  creates a case) once in each language (French, English, Bambara), `--walks`
  times each, a new phone and session every walk.

The lines a hop runs are the traffic run's executed lines minus the idle run's:
start-up, shutdown and whatever runs with no message are left out. Prints the
total, the number of files and the lines per file. `--tree` measures another
checkout (e.g. `git worktree add /tmp/before <commit>`) with this environment.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from webhooks import PRODUCT_WALK, SECRET, USSD_PATH, free_port, scratch_redis  # noqa: E402

LANGUAGE_KEYS = {"fr": "1", "en": "2", "bm": "3"}
"""The welcome screen's key of each language: the walk's first input."""
RUNNER = "import sys; from bot.cli import main; sys.exit(main())"


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Until the server accepts a connection (no request sent: no line of `bot/` run)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"helpline serve did not listen on {port}") from None
            time.sleep(0.05)


def post(url: str, fields: dict[str, str]) -> str:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(),
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def walk(base: str, language: str, number: int) -> str:
    """One return request in `language`; the last answer (the reference's screen)."""
    inputs = [LANGUAGE_KEYS[language], *PRODUCT_WALK[1:]]
    # A phone of its own per language: a phone remembers its language and its open request.
    phone = f"+2237{LANGUAGE_KEYS[language]}{number:06d}"
    answer = ""
    for hop in range(len(inputs) + 1):
        answer = post(f"{base}{USSD_PATH}?key={SECRET}", {
            "sessionId": f"lines-{language}-{number}", "serviceCode": "*384*55#",
            "phoneNumber": phone, "networkCode": "61001", "text": "*".join(inputs[:hop])})
    return answer


def covered(tree: Path, work: Path, name: str, walks: int) -> dict[str, set[int]]:
    """Executed lines of `bot/` by file, of a server that answers `walks` walks a language."""
    import coverage

    redis_port = free_port()
    redis = scratch_redis(work, redis_port)
    data_file = work / f".coverage.{name}"
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("HELPLINE_", "TWILIO_", "COVERAGE_")) and key != "REDIS_URL"}
    env.update(REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", HELPLINE_USSD_SECRET=SECRET,
               HELPLINE_PII_KEY="lines-pii-key", HELPLINE_DATA_DIR=str(work / f"var-{name}"),
               PYTHONPATH=str(tree))
    script = work / "serve.py"
    script.write_text(RUNNER + "\n")
    server = subprocess.Popen(
        [sys.executable, "-m", "coverage", "run", f"--data-file={data_file}",
         f"--source={tree / 'bot'}", str(script), "serve", "--port", str(port)],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, server)
        base = f"http://127.0.0.1:{port}"
        for number in range(walks):
            for language in LANGUAGE_KEYS:
                last = walk(base, language, number)
                if not last.startswith("END"):
                    raise RuntimeError(f"the {language} walk did not end: {last!r}")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
        redis.terminate()
        redis.wait(10)
    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    root = tree.resolve()
    return {str(Path(path).resolve().relative_to(root)): set(data.lines(path) or ())
            for path in data.measured_files()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--walks", type=int, default=1, help="walks per language")
    parser.add_argument("--top", type=int, default=40, help="files listed")
    parser.add_argument("--tree", type=Path, default=HERE.parent)
    parser.add_argument("--show", action="store_true",
                        help="print each file's lines a hop runs, with their numbers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hop-lines-") as scratch:
        work = Path(scratch)
        idle = covered(args.tree, work, "idle", 0)
        busy = covered(args.tree, work, "traffic", args.walks)
    per_file = {path: len(lines - idle.get(path, set())) for path, lines in busy.items()}
    per_file = {path: count for path, count in per_file.items() if count}
    total = sum(per_file.values())
    print(f"lines of bot/ a USSD hop runs beyond start-up: {total} in {len(per_file)} files "
          f"(return requests in {', '.join(LANGUAGE_KEYS)}, {args.walks} walk(s) each)")
    for path, count in sorted(per_file.items(), key=lambda item: (-item[1], item[0]))[:args.top]:
        print(f"{count:6d}  {path}")
    if args.show:
        for path in sorted(per_file):
            source = (args.tree / path).read_text().splitlines()
            print(f"\n== {path}")
            for number in sorted(busy[path] - idle.get(path, set())):
                print(f"{number:5d}  {source[number - 1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
