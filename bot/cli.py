"""`helpline`: the command line of docs/spec.md §3.

Each area registers its own sub-commands (`register(subparsers)`), so this
module only wires them together.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot import cli_conversation


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helpline", description="SMS/USSD helpline for migrants")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_conversation.register(commands)
    _register_optional(commands)
    return parser


def _register_optional(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Areas that land in their own modules: serve/worker, operators, cases."""
    from bot import cli_admin, cli_server

    cli_server.register(commands)
    cli_admin.register(commands)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
