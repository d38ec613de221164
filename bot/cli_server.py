"""`helpline serve`: the web app (webhooks, admin API, console) under uvicorn."""

from __future__ import annotations

import argparse
import gc
import sys

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
EXIT_SETTINGS = 2
GC_THRESHOLDS = (50_000, 20, 100)
"""A hop allocates a few hundred objects: collect the young generation every ~100 hops,
not every 2-3 (CPython's 700), and the old ones rarely."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the web app (webhooks, admin API, console)")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.set_defaults(handler=run_serve)
    from bot import cli_worker  # `helpline worker` lives in its own module

    cli_worker.register(commands)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.errors import ProdSettingsMissing
    from bot.observability import configure_logging, uvicorn_log_config
    from bot.settings import get_settings

    settings = get_settings()
    try:
        app = create_app(settings)
    except ProdSettingsMissing as error:
        for line in str(error).splitlines():
            print(line, file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging()
    # What start-up made lives as long as the process: out of the collector's way.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,  # ours (bot.observability.AccessLog) redacts the USSD key
        log_config=uvicorn_log_config(),
        proxy_headers=True,
        server_header=False,
    )
    return 0
