"""`helpline serve` and `helpline worker`."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the web app (webhooks, admin API, console)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.settings import get_settings

    uvicorn.run(create_app(get_settings()), host=args.host, port=args.port)
    return 0
