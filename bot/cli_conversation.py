"""`helpline chat` and `helpline flows check|graph`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import FlowError

if TYPE_CHECKING:
    from bot.flows.lint import Report


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = commands.add_parser("chat", help="talk to the bot as a basic phone would")
    chat.add_argument("--channel", choices=["ussd", "sms", "voice"], default="ussd")
    chat.add_argument("--phone", default="+22370000001")
    chat.add_argument("--lang", default=None, help="language to start in (fr, en, bm)")
    chat.set_defaults(handler=run_chat)

    flows = commands.add_parser("flows", help="check or draw a flow")
    flow_commands = flows.add_subparsers(dest="flows_command", required=True)
    check = flow_commands.add_parser("check", help="lint a flow: exits non-zero on problems")
    check.add_argument("path", nargs="?", type=Path, default=None)
    check.set_defaults(handler=run_flows_check)
    graph = flow_commands.add_parser("graph", help="print a Mermaid diagram of a flow")
    graph.add_argument("path", nargs="?", type=Path, default=None)
    graph.set_defaults(handler=run_flows_graph)


def _flow_path(path: Path | None) -> Path:
    from bot.settings import get_settings

    return path or get_settings().flow


def run_flows_check(args: argparse.Namespace) -> int:
    from bot.flows.checked import lint_flow
    from bot.settings import get_settings

    path = _flow_path(args.path)
    try:
        report = lint_flow(path, ussd_max_chars=get_settings().ussd_max_chars)
    except FlowError as error:
        print(error)
        return 1
    for problem in report.problems:
        print(problem)
    for note in report.notes:
        print(f"note: {note}")
    for language, by_encoding in report.encodings.items():
        counts = ", ".join(f"{len(states)} {encoding}" for encoding, states in by_encoding.items())
        ucs2 = [state for encoding, states in by_encoding.items() if encoding == "UCS-2"
                for state in states]
        costly = f" (UCS-2: {', '.join(ucs2)})" if ucs2 else ""
        total = report.segments.get(language, 0)
        print(f"{language}: {counts} screens{costly}; {total} SMS segments for all screens")
    _print_voice(report)
    if report.problems:
        print(f"{path}: {len(report.problems)} problem(s)")
        return 1
    print(f"{path}: ok")
    return 0


def _print_voice(report: Report) -> None:
    """Voice calls: seconds each screen takes to say, screens a language has no voice for."""
    for state, by_language in report.voice.seconds.items():
        said = ", ".join(f"{language} {seconds:.0f} s" for language, seconds in
                         by_language.items())
        print(f"voice: {state}: {said}")
    for language, states in report.voice.without_audio.items():
        print(f"voice: {language} has no TTS voice; {len(states)} screens without audio: "
              f"{', '.join(states)}")


def run_flows_graph(args: argparse.Namespace) -> int:
    from bot.flows.checked import load_checked
    from bot.flows.graph import mermaid

    try:
        compiled = load_checked(_flow_path(args.path))
    except FlowError as error:
        print(error, file=sys.stderr)
        return 1
    print(mermaid(compiled), end="")
    return 0


def run_chat(args: argparse.Namespace) -> int:
    from bot.chat import chat

    try:
        return asyncio.run(chat(channel=args.channel, phone=args.phone, language=args.lang))
    except FlowError as error:
        print(error, file=sys.stderr)
        return 1
