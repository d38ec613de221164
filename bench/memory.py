"""Redis memory per mid-form session and per whole return request (docs/spec.md §9).

Drives the real conversation loop (USSD, in-process) against a fresh
redis-server, and reads `used_memory` (INFO memory) before and after:

- mid-form: N phones each stopped half-way through a return request (language,
  menu, consent, name, nationality): session, draft, receipts, lease-free;
- whole request: N phones each through a whole return request (the case, its
  indexes, its audit events and outbox event, and what stays of the phone:
  receipts until the USSD session's TTL, a profile when one is worth keeping).

Before measuring, one request in each case shard makes the shards' structures
(printed apart: a cost of the deployment, ~150 KB, not of each request).

Prints bytes per item and docs/spec.md §9's bounds (512 B, 3,000 B). Figures, not
assertions (see BENCHMARKS.md). Usage: python bench/memory.py [--phones N]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.channels.africastalking_ussd import UssdHop
from bot.conversation import Conversation, InboundMessage
from bot.flows.checked import load_checked
from bot.settings import DEFAULT_FLOW, Settings
from bot.store import keys
from bot.types import Channel

SESSION_BOUND = 512
REQUEST_BOUND = 3000
# Language 1 (French), main menu 2 (return request), 1 (consent), then the answers.
MID_FORM = ["1", "2", "1", "Awa Diarra", "Mali"]
WHOLE = ["1", "2", "1", "Awa Diarra", "Mali", "Niger", "Agadez",
         "2", "2", "2", "1", "2", "1", "1", "1", "1"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server", path="/usr/bin") or shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, port


async def used_memory(redis: Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


async def settle(redis: Redis) -> int:
    """used_memory once background frees have run (lazy frees, expired keys)."""
    await asyncio.sleep(0.2)
    return await used_memory(redis)


CHANNEL = Channel.USSD


async def drive(conversation: Conversation, phone: str, inputs: list[str]) -> str:
    if CHANNEL is Channel.SMS:
        text = ""
        for number, typed in enumerate(["AIDE", *inputs]):
            text = (await conversation.handle(InboundMessage(
                Channel.SMS, phone, typed, message_id=f"SM{phone}{number}"))).text
        return text
    # As the USSD gateway sends them: each hop with its id (session and history), so
    # the receipts hold what a retried hop needs, as they do in production.
    session = f"bench-{phone}"
    history = ""
    text = (await conversation.handle(InboundMessage(
        Channel.USSD, phone, "", ussd_session=session, restart=True,
        message_id=UssdHop(session, phone, "").message_id))).text
    for typed in inputs:
        history = f"{history}*{typed}" if history else typed
        text = (await conversation.handle(InboundMessage(
            Channel.USSD, phone, history, ussd_session=session,
            message_id=UssdHop(session, phone, history).message_id))).text
    return text


async def measure(phones: int, port: int) -> dict[str, float]:
    redis = Redis(port=port, decode_responses=True)
    settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0", data_dir=Path(tempfile.mkdtemp()))
    compiled = load_checked(DEFAULT_FLOW)
    figures: dict[str, float] = {}
    try:
        # Warm up: scripts loaded, then cleared; then one request in each case shard makes
        # the shards' structures (indexes, the first node of their audit and outbox
        # streams: Redis pre-allocates 4 KB a node), a cost of the deployment, not of one
        # request (printed apart: at 100 requests it would add ~1.5 KB to each).
        warm = Conversation(redis=redis, compiled=compiled, settings=settings)
        await drive(warm, "+22360000000", WHOLE)
        await redis.flushall()
        await redis.script_flush()
        start = await settle(redis)
        shards_warmed = set()
        for number in range(1, 10_000):
            phone = f"+2236{number:07d}"
            shard = keys.shard_of_phone(warm.pseudonym(phone))
            if shard not in shards_warmed:
                shards_warmed.add(shard)
                await drive(warm, phone, WHOLE)
            if len(shards_warmed) == keys.CASE_SHARDS:
                break
        await warm.aclose()
        figures["shard structures"] = await settle(redis) - start

        conversation = Conversation(redis=redis, compiled=compiled, settings=settings)
        before = await settle(redis)
        for number in range(phones):
            await drive(conversation, f"+2237{number:07d}", MID_FORM)
        after = await settle(redis)
        figures["mid-form session"] = (after - before) / phones

        before = after
        for number in range(phones):
            last = await drive(conversation, f"+2238{number:07d}", WHOLE)
            if "-" not in last:
                raise RuntimeError(f"no reference shown: {last!r}")
        await conversation.aclose()
        after = await settle(redis)
        figures["whole return request"] = (after - before) / phones
        figures["keys per request"] = 0.0
    finally:
        await redis.aclose()
    return figures


async def main_async(phones: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    process, port = start_redis(directory)
    try:
        client = Redis(port=port)
        for _ in range(100):
            try:
                await client.ping()
                break
            except (RedisConnectionError, OSError):
                await asyncio.sleep(0.05)
        await client.aclose()
        figures = await measure(phones, port)
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)
    session, request = figures["mid-form session"], figures["whole return request"]
    print(f"phones: {phones}, channel: {CHANNEL}")
    print(f"case shards' structures (once per deployment, {keys.CASE_SHARDS} requests "
          f"made them): {figures['shard structures'] / 1024:.0f} KB")
    print(f"mid-form session:     {session:8.0f} B  (bound {SESSION_BOUND} B: "
          f"{session / SESSION_BOUND:.2f}x)")
    print(f"whole return request: {request:8.0f} B  (bound {REQUEST_BOUND} B: "
          f"{request / REQUEST_BOUND:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=500)
    parser.add_argument("--channel", choices=["ussd", "sms"], default="ussd")
    args = parser.parse_args()
    global CHANNEL
    CHANNEL = Channel(args.channel)
    asyncio.run(main_async(args.phones))


if __name__ == "__main__":
    main()
