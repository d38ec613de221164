"""Instructions a USSD hop costs `helpline serve`: callgrind, so load does not matter.

    python bench/hop_instructions.py [TREE] [WALKS]

`helpline serve` of TREE (a checkout; this one by default) runs under
`valgrind --tool=callgrind` against a scratch `redis-server`; five return-request
walks warm it up, then instructions are counted over WALKS walks (20: 320 hops),
each a new phone and session, one hop at a time. Prints instructions a hop.
Reruns agree within ~0.3%; a run takes a few minutes. Needs valgrind.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import webhooks as bench  # noqa: E402

SERVE = "import sys; from bot.cli import main; sys.exit(main())"
PATH = f"/webhooks/ussd/africastalking?key={bench.SECRET}"


def walk(conn: http.client.HTTPConnection, n: int) -> None:
    """One return request, hop by hop, from phone number `n` in session `ic-<n>`."""
    phone = f"+2237{n:07d}"
    for hop in range(len(bench.PRODUCT_WALK) + 1):
        body = urllib.parse.urlencode({
            "sessionId": f"ic-{n}", "serviceCode": "*384*55#", "phoneNumber": phone,
            "networkCode": "61001", "text": "*".join(bench.PRODUCT_WALK[:hop])})
        conn.request("POST", PATH, body, {"Content-Type": "application/x-www-form-urlencoded"})
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200, answer.status


def main() -> None:
    tree = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE.parent
    walks = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    work = Path(tempfile.mkdtemp(prefix="hop-instructions-"))
    redis = bench.scratch_redis(work, redis_port := bench.free_port())
    time.sleep(0.3)
    port = bench.free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HELPLINE_", "TWILIO_")) and k != "REDIS_URL"}
    env.update(REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", HELPLINE_USSD_SECRET=bench.SECRET,
               HELPLINE_PII_KEY="bench-pii-key", HELPLINE_DATA_DIR=str(work / "var"),
               PYTHONPATH=str(tree))
    log_path = work / "log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={work / 'cg.out'}", sys.executable, "-c", SERVE,
             "serve", "--port", str(port)], stdout=log, stderr=log, cwd=work, env=env)
        try:
            bench.wait_for(proc, f"http://127.0.0.1:{port}/healthz", seconds=600)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            for n in range(5):
                walk(conn, n)
            control = ["callgrind_control", "-i"]
            subprocess.run([*control, "on", str(proc.pid)], check=True, capture_output=True)
            for n in range(100, 100 + walks):
                walk(conn, n)
            subprocess.run([*control, "off", str(proc.pid)], check=True, capture_output=True)
            conn.close()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(300)
            bench.stop(redis)
    found = re.search(r"Collected : (\d+)", log_path.read_text(errors="replace"))
    assert found is not None, "callgrind printed no total"
    hops = walks * (len(bench.PRODUCT_WALK) + 1)
    print(f"{tree}: {int(found.group(1)) / hops / 1e3:.1f}k instructions a hop ({hops} hops)"
          f" [{work}]")


if __name__ == "__main__":
    main()
