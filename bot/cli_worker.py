"""`helpline worker`: the background worker (outbound SMS, notices, scheduled jobs)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

EXIT_SETTINGS = 2


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker", help="run the background worker (outbound SMS, notifications, scheduled jobs)"
    )
    worker.set_defaults(handler=run_worker_command)


def _quiet_logs() -> None:
    # httpx logs every request URL at INFO; Twilio URLs can carry a phone number.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


async def _main() -> None:
    from bot.jobs.worker import run_worker
    from bot.settings import get_settings

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run_worker(get_settings(), stop=stop)


def run_worker_command(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from bot.errors import ProdSettingsMissing
    from bot.observability import configure_logging
    from bot.settings import Env, get_settings, settings_problems

    try:
        settings = get_settings()
    except ValidationError as error:
        for line in settings_problems(error):
            print(line, file=sys.stderr)
        return EXIT_SETTINGS
    missing = settings.missing_for_prod() if settings.env is Env.PROD else []
    if missing:
        print(str(ProdSettingsMissing(missing)), file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging()
    _quiet_logs()
    try:
        asyncio.run(_main())
    except ValueError as exc:  # a REDIS_URL the queue cannot use
        print(f"helpline worker: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    return 0
