"""`helpline serve --workers 2`: two processes on one port, one embedded Redis (issue 11).

Started as a deployer starts it, on the embedded default (no `REDIS_URL`). The
test finds the two worker processes, opens one keep-alive connection to each
(a connection is served by the process that accepted it: which one is read
from /proc), and walks a USSD return request whose hops alternate between
them: the case is made with every answer, on the one embedded server. SIGTERM
to the supervising process then stops every process it started, the embedded
redis-server included. Either process's /metrics counts the hops of both.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot import cli
from bot.store import keys
from tests.integration.webhooks_support import EXPECTED_ANSWERS, RETURN_REQUEST, reference_in
from tests.processes import clean_env, helpline, wait_until_answering
from tests.redis_server import free_port

USSD = "/webhooks/ussd/africastalking"
PHONE = "+22376000077"
CONNECTING_SECONDS = 30.0
STOP_SECONDS = 30.0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def workers_of(pid: int) -> list[int]:
    """The serving processes (uvicorn spawns them; multiprocessing's tracker aside)."""
    return [child for child in children(pid)
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def server_socket_inode(server_port: int, client_port: int) -> int:
    """The inode of the accepted socket of one loopback connection (/proc/net/tcp)."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return int(fields[9])
    raise AssertionError(f"no accepted socket for client port {client_port}")


def owner(inode: int, pids: list[int]) -> int | None:
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


class Served:
    def __init__(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "var"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            helpline("serve", "--port", str(self.port), "--workers", "2"),
            env=clean_env(HELPLINE_DATA_DIR=str(self.data_dir)), cwd=tmp_path,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def embedded_pid(self) -> int:
        registry = json.loads((self.data_dir / "helpline.rdb.settings").read_text())
        return int(Path(registry["pidfile"]).read_text().strip())

    def embedded_socket(self) -> str:
        registry = json.loads((self.data_dir / "helpline.rdb.settings").read_text())
        return str(registry["unixsocket"])

    def connection_to_each_worker(self) -> dict[int, http.client.HTTPConnection]:
        """One open connection per worker process, keyed by its pid.

        The first answer may come before the other worker listens: new connections
        are opened until each worker has accepted one.
        """
        workers = workers_of(self.process.pid)
        assert len(workers) == 2, workers
        found: dict[int, http.client.HTTPConnection] = {}
        deadline = time.monotonic() + CONNECTING_SECONDS
        while len(found) < len(workers) and time.monotonic() < deadline:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            connection.request("GET", "/healthz")  # answered: accepted by a worker
            assert connection.getresponse().read()
            client_port = connection.sock.getsockname()[1]
            pid = owner(server_socket_inode(self.port, client_port), workers)
            if pid is not None and pid not in found:
                found[pid] = connection
                continue
            connection.close()
            time.sleep(0.05)
        if len(found) < len(workers):
            for connection in found.values():
                connection.close()
            raise AssertionError(f"a worker accepted no connection in {CONNECTING_SECONDS} s")
        return found


def hop(connection: http.client.HTTPConnection, text: str) -> str:
    form = {"sessionId": "ATUid_workers", "serviceCode": "*384*55#", "phoneNumber": PHONE,
            "networkCode": "61001", "text": text}
    connection.request("POST", USSD, body=urllib.parse.urlencode(form),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    answer = connection.getresponse()
    body = answer.read().decode()
    assert answer.status == 200, body
    return body


def ussd_messages(connection: http.client.HTTPConnection) -> float:
    connection.request("GET", "/metrics")
    answer = connection.getresponse()
    text = answer.read().decode()
    assert answer.status == 200, text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("helpline_messages_total{") and 'channel="ussd"' in line)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path)
    started: list[int] = []
    try:
        wait_until_answering(server.process, server.base, "/readyz")
        started = [*children(server.process.pid), server.embedded_pid()]
        yield server
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(STOP_SECONDS)
        for pid in started:  # the test failed before stopping it: leave nothing behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_two_processes_answer_the_hops_of_one_request_and_sigterm_stops_them_all(
        served: Served) -> None:
    by_worker = served.connection_to_each_worker()
    connections = list(by_worker.values())
    history = ""
    shown = hop(connections[0], history)
    assert shown.startswith("CON ")
    for number, typed in enumerate(["1", *RETURN_REQUEST]):
        history = f"{history}*{typed}" if history else typed
        shown = hop(connections[(number + 1) % 2], history)  # hops alternate processes
    reference = reference_in(shown)
    assert shown.startswith("END ")
    # Either process's /metrics counts the hops both answered.
    hops = 2 + len(RETURN_REQUEST)
    assert {pid: ussd_messages(connection) for pid, connection in by_worker.items()} == {
        pid: hops for pid in by_worker}

    # One embedded server for both: the case is there, with every answer.
    client = redis.Redis(unix_socket_path=served.embedded_socket(), decode_responses=True)
    try:
        answers = client.get(keys.case_answers(reference))
    finally:
        client.close()
    assert json.loads(answers or "{}") == EXPECTED_ANSWERS
    for connection in connections:
        connection.close()

    started = [*children(served.process.pid), served.embedded_pid()]
    assert set(by_worker) <= set(started)
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(STOP_SECONDS) == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in started if alive(pid)] == []


def test_a_number_of_processes_below_one_is_refused_by_name(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["serve", "--workers", "0"])
    assert stopped.value.code == 2
    assert "--workers: at least 1 process, not 0" in capsys.readouterr().err


def test_web_concurrency_gives_the_number_of_processes(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        helpline("serve", "--port", str(port)), cwd=tmp_path,
        env=clean_env(WEB_CONCURRENCY="2", HELPLINE_DATA_DIR=str(tmp_path / "var")),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_answering(process, f"http://127.0.0.1:{port}", "/readyz")
        assert len(workers_of(process.pid)) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP_SECONDS) == 0


def test_web_concurrency_below_one_is_refused_by_name(tmp_path: Path) -> None:
    refused = subprocess.run(
        helpline("serve", "--port", str(free_port())), capture_output=True, text=True,
        env=clean_env(WEB_CONCURRENCY="0", HELPLINE_DATA_DIR=str(tmp_path / "var")),
        cwd=tmp_path, timeout=60)
    assert refused.returncode == 2
    assert "WEB_CONCURRENCY: Input should be greater than or equal to 1" in refused.stderr
