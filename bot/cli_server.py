"""`helpline serve`: the web app (webhooks, admin API, console) under uvicorn.

`--workers N` (or `WEB_CONCURRENCY`) runs N processes on one listening socket
(uvicorn's supervisor: it restarts a worker that dies and stops them all on
SIGTERM/SIGINT). Each process is a whole `helpline serve`: gateway lane,
access log, collector tuning, proxy headers; `/metrics` of any reports all.
On the embedded default the supervising process starts the one embedded
Redis, supervises it as a single process does, and hands its socket to the
workers: never one server a process.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import sys
import tempfile
import threading
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
EXIT_SETTINGS = 2
GC_THRESHOLDS = (50_000, 20, 100)
"""A hop allocates a few hundred objects: collect the young generation every ~100 hops,
not every 2-3 (CPython's 700), and the old ones rarely."""
WORKER_APP = "bot.cli_server:worker_app"
"""What each of several processes imports (uvicorn's workers need an import string)."""


def worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of processes, not {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"at least 1 process, not {count}")
    return count


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the web app (webhooks, admin API, console)")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--workers", type=worker_count, default=None, metavar="N",
                       help="processes serving the port (default: WEB_CONCURRENCY, else 1)")
    serve.set_defaults(handler=run_serve)
    from bot import cli_worker  # `helpline worker` lives in its own module

    cli_worker.register(commands)


def run_serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from bot.settings import get_settings, settings_problems

    try:
        settings = get_settings()
    except ValidationError as error:
        for line in settings_problems(error):  # one line a setting, named as in the environment
            print(line, file=sys.stderr)
        return EXIT_SETTINGS
    workers = args.workers if args.workers is not None else settings.web_concurrency
    if workers == 1:
        return _serve_one(args, settings)
    return _serve_processes(args, settings, workers)


def _uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    from bot.observability import uvicorn_log_config

    return {
        "host": args.host,
        "port": args.port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,  # ours (bot.observability.AccessLog) redacts the USSD key
        "log_config": uvicorn_log_config(),
        "proxy_headers": True,
        "server_header": False,
    }


def _tune_collector() -> None:
    # What start-up made lives as long as the process: out of the collector's way.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _serve_one(args: argparse.Namespace, settings: Any) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.errors import ProdSettingsMissing
    from bot.observability import configure_logging

    try:
        app = create_app(settings)
    except ProdSettingsMissing as error:
        for line in str(error).splitlines():
            print(line, file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging()
    _tune_collector()
    # workers=1 said explicitly: uvicorn would otherwise read WEB_CONCURRENCY itself.
    uvicorn.run(app, workers=1, **_uvicorn_options(args))
    return 0


def worker_app() -> Any:
    """The app of one of several processes (uvicorn calls this in each one it starts)."""
    from bot.app import create_app
    from bot.observability import configure_logging
    from bot.settings import get_settings

    app = create_app(get_settings())
    configure_logging()
    # As `_serve_one` leaves it (uvicorn configures its loggers after ours there):
    # uvicorn's own access log stays off, ours redacts the USSD key.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    _tune_collector()
    return app


def _serve_processes(args: argparse.Namespace, settings: Any, workers: int) -> int:
    import uvicorn

    from bot.app import require_prod_settings
    from bot.errors import ProdSettingsMissing
    from bot.observability import configure_logging
    from bot.probes import MULTIPROCESS_DIR
    from bot.store import supervision
    from bot.store.connection import start_embedded, stop_embedded

    try:
        require_prod_settings(settings)  # once, here, rather than once a worker
    except ProdSettingsMissing as error:
        for line in str(error).splitlines():
            print(line, file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging()
    # /metrics of any worker reports all of them: prometheus_client's multi-process
    # mode, its files in a directory of this run (set before any worker imports it).
    metrics_dir = tempfile.mkdtemp(prefix="helpline-metrics-")
    os.environ[MULTIPROCESS_DIR] = metrics_dir
    embedded = None
    stopping = threading.Event()
    supervisor = None
    if not settings.redis_url:
        # One embedded server for all the workers, started and supervised here; the
        # workers (started after this) reach it as any Redis at its socket.
        embedded = start_embedded(settings.data_dir)
        os.environ["REDIS_URL"] = f"unix://{embedded.socket_file}"
        supervisor = threading.Thread(target=supervision.supervise_until,
                                      args=(embedded, stopping), daemon=True,
                                      name="embedded-redis-supervisor")
        supervisor.start()
    try:
        uvicorn.run(WORKER_APP, factory=True, workers=workers, **_uvicorn_options(args))
    finally:
        # uvicorn returns once every worker has stopped (each ran its own shutdown).
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if embedded is not None:
            stopping.set()
            if supervisor is not None:
                supervisor.join()
            stop_embedded(embedded)
    return 0
