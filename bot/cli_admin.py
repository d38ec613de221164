"""`helpline operators …` and `helpline cases …`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from redis.asyncio import Redis

from bot.admin.operators import Role
from bot.errors import LastAdmin, OperatorExists, OperatorNotFound

CLI_ACTOR = "cli"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Operators and cases commands are registered here."""
    ops = commands.add_parser("operators", help="manage the operators of the admin API")
    ops_commands = ops.add_subparsers(dest="operators_command", required=True, metavar="ACTION")
    add = ops_commands.add_parser("add", help="create an operator and print its token once")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[str(role) for role in Role])
    add.set_defaults(handler=run_operators_add)
    listing = ops_commands.add_parser("list", help="list operators (never their tokens)")
    listing.set_defaults(handler=run_operators_list)
    revoke = ops_commands.add_parser("revoke", help="revoke an operator's token")
    revoke.add_argument("name")
    revoke.set_defaults(handler=run_operators_revoke)

    cases = commands.add_parser("cases", help="cases")
    cases_commands = cases.add_subparsers(dest="cases_command", required=True, metavar="ACTION")
    export = cases_commands.add_parser("export", help="CSV export (the API export's columns)")
    export.add_argument("--out", type=Path, default=None, help="file to write (default stdout)")
    export.set_defaults(handler=run_cases_export)


def _with_redis(work: Callable[[Redis], Awaitable[int]]) -> int:
    from bot.settings import get_settings
    from bot.store.connection import open_store

    async def run() -> int:
        store = open_store(get_settings())
        try:
            return await work(store.redis)
        finally:
            await store.close()

    return asyncio.run(run())


def _now() -> datetime:
    return datetime.now(UTC)


def run_operators_add(args: argparse.Namespace) -> int:
    import re

    from bot.admin.operators import add_operator
    from bot.admin.schemas import NAME_PATTERN

    if not re.fullmatch(NAME_PATTERN, args.name):
        print(f"invalid name {args.name!r}: lowercase letters, digits, . _ -", file=sys.stderr)
        return 2

    async def work(redis: Redis) -> int:
        try:
            token = await add_operator(redis, name=args.name, role=Role(args.role), now=_now())
        except OperatorExists:
            print(f"an active operator is already named {args.name}", file=sys.stderr)
            return 1
        print(f"operator {args.name} ({args.role}) created; its token, shown only once:")
        print(token)
        return 0

    return _with_redis(work)


def run_operators_list(args: argparse.Namespace) -> int:
    from bot.admin.operators import list_operators

    async def work(redis: Redis) -> int:
        for operator in await list_operators(redis):
            state = f"revoked {operator.revoked_at}" if operator.revoked_at else "active"
            print(f"{operator.name}\t{operator.role}\t{operator.created_at}\t{state}")
        return 0

    return _with_redis(work)


def run_operators_revoke(args: argparse.Namespace) -> int:
    from bot.admin.operators import revoke_operator

    async def work(redis: Redis) -> int:
        try:
            await revoke_operator(redis, name=args.name, now=_now())
        except OperatorNotFound:
            print(f"no active operator is named {args.name}", file=sys.stderr)
            return 1
        except LastAdmin:
            print(f"{args.name} is the last active admin: add another admin first",
                  file=sys.stderr)
            return 1
        print(f"operator {args.name} revoked")
        return 0

    return _with_redis(work)


def run_cases_export(args: argparse.Namespace) -> int:
    from bot.cases.export import export_csv
    from bot.store import audit

    async def write(redis: Redis, out: TextIO) -> None:
        await audit.record(
            redis,
            reference=audit.NO_CASE,
            actor=CLI_ACTOR,
            action="exported",
            at=_now(),
            detail={"format": "csv"},
        )
        async for chunk in export_csv(redis):
            out.write(chunk)

    async def work(redis: Redis) -> int:
        if args.out is None:
            await write(redis, sys.stdout)
        else:
            with args.out.open("w", encoding="utf-8", newline="") as out:
                await write(redis, out)
        return 0

    return _with_redis(work)
