"""CPU a USSD hop spends in the turn: the conversation and its plan, no HTTP.

    python bench/turn.py [--walks 300] [--rounds 5] [--profile]

Two loops over the return request walked as bench/webhooks.py walks it (16 hops:
the dial, language, menu, consent, eleven answers, confirmation; a new phone and
USSD session every walk, Africa's Talking's `text` = every input so far):

1. turn alone: what `Conversation` computes for a hop it writes in one round trip
   (`plan`, the state STEP compares, STEP's arguments, the state remembered),
   no Redis;
2. conversation: `Conversation.process` against a real redis-server (uvloop,
   the scripts' lean connection as `helpline serve` has it), a hop at a time;
3. ASGI app: the same walk posted straight into the app (`bench/hop_profile.py`'s
   in-process loop: gateway lane, form, access log, metrics; no sockets, no HTTP).

Prints process CPU µs a hop (`time.process_time`, medians of the rounds) and the
load average; `--profile` adds cProfile's top functions, `--spy N` py-spy's shares
of the turn-alone loop. `TURN_BENCH_TREE=/path/to/checkout` measures another
checkout's code (e.g. a worktree of main) with this script.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("TURN_BENCH_TREE")
                or str(Path(__file__).resolve().parent.parent))

from bench import webhooks as bench
from bot.conversation import InboundMessage
from bot.engine.receipts import message_digest
from bot.types import Channel

WALK = bench.PRODUCT_WALK


def hops(walk_no: int) -> list[InboundMessage]:
    """The messages of one walk, as the Africa's Talking route builds them."""
    session_id = f"tb-{walk_no}"
    phone = f"+2237{walk_no % 10_000_000:07d}"
    out = []
    for hop in range(len(WALK) + 1):
        text = "*".join(WALK[:hop])
        out.append(InboundMessage(Channel.USSD, phone, text,
                                  message_id=f"{session_id}\x1f{text}",
                                  ussd_session=session_id))
    return out


def settings(redis_url: str, data_dir: Path) -> Any:
    from pydantic import SecretStr

    from bot.settings import Settings

    return Settings(redis_url=redis_url, data_dir=data_dir,
                    ussd_secret=SecretStr(bench.SECRET), pii_key=SecretStr("bench-pii-key"))


def turn_alone(conversation: Any, walks: int, first: int) -> float:
    """CPU µs a hop of the one-round-trip hop's own computation: the plan and STEP's
    arguments, the write assumed done (no Redis). Needs a checkout with `Planner`."""
    if not hasattr(conversation, "planner"):
        return float("nan")
    from bot.cases.references import draw_reference
    from bot.engine.session import NOTHING_STORED, Reads
    from bot.store import sessions
    from bot.store.sessions import PhoneKeys

    planner = conversation.planner
    messages = [hops(first + n) for n in range(walks)]
    now = datetime.now(UTC)
    count = 0

    def draw() -> list[str]:
        return [draw_reference() for _ in range(4)]

    started = time.process_time()
    for walk in messages:
        state = NOTHING_STORED
        for message in walk:
            phone_keys = PhoneKeys.of(conversation.pseudonym(message.phone), message.channel)
            token = secrets.token_hex(8)
            digest = message_digest(message.message_id)
            planned = planner.plan(message, state, digest=digest, token=token, now=now,
                                   draw=draw)
            if planned.needs_read:
                planned = planner.plan(message, state, digest=digest, token=token, now=now,
                                       draw=draw, reads=Reads(open_known=True))
            assert planned.commit is not None
            sessions.step_call(phone_keys, token, expected=state.joined(), digest=digest,
                               rate=sessions.NO_RATE_LIMIT, values=planned.commit)
            state = state.after(planned.commit, planned.decoded)
            count += 1
    return (time.process_time() - started) / count * 1e6


async def conversation_loop(conversation: Any, walks: int, first: int) -> float:
    messages = [hops(first + n) for n in range(walks)]
    count = 0
    started = time.process_time()
    for walk in messages:
        for message in walk:
            await conversation.process(message)
            count += 1
    return (time.process_time() - started) / count * 1e6


async def app_loop(app: Any, walks: int, first: int) -> float:
    """The walk through the ASGI app (gateway lane, form, log, metrics), no sockets."""
    requests = []
    for walk in (hops(first + n) for n in range(walks)):
        for message in walk:
            body = (f"sessionId={message.ussd_session}&serviceCode=%2A384%2A55%23&phoneNumber="
                    f"%2B{message.phone[1:]}&networkCode=61001&text="
                    + message.text.replace(" ", "+")).encode()
            requests.append((body, bench.ussd_scope(body)))
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    started = time.process_time()
    for body, scope in requests:

        async def receive(body: bytes = body) -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        sent.clear()
        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"hop answered {sent[0]['status']}")
    return (time.process_time() - started) / len(requests) * 1e6


async def run(redis_url: str, data_dir: Path, walks: int, rounds: int, profile: bool,
              spy: int) -> None:
    try:
        from bot.store.script_lane import script_lane
    except ImportError:  # a checkout from before it moved out of bot/channels/
        from bot.channels.redis_lane import script_lane
    from bot.conversation import Conversation
    from bot.flows.checked import load_checked
    from bot.store.connection import client_for_url

    config = settings(redis_url, data_dir)
    redis = client_for_url(redis_url)
    compiled = load_checked(config.flow, config.ussd_max_chars)
    conversation = Conversation(redis=script_lane(redis), compiled=compiled, settings=config,
                                sms_rate_limit=config.rate_limit)
    from bot.app import create_app

    app = create_app(config)
    alone: list[float] = []
    whole: list[float] = []
    served: list[float] = []
    async with app.router.lifespan_context(app):
        await conversation_loop(conversation, 20, 1_000_000)
        turn_alone(conversation, 20, 2_000_000)
        await app_loop(app, 20, 4_000_000)
        for round_no in range(rounds):
            alone.append(turn_alone(conversation, walks, 3_000_000 + round_no * walks))
            whole.append(await conversation_loop(conversation, walks, round_no * walks))
            served.append(await app_loop(app, walks, 5_000_000 + round_no * walks))
    print(f"{Path(sys.path[0]).name}: load average {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f}; {rounds} rounds of {walks} walks "
          f"({walks * (len(WALK) + 1)} hops)")
    for label, values in (("turn alone (plan, STEP's arguments)", alone),
                          ("conversation (process, real Redis)", whole),
                          ("ASGI app (gateway lane, real Redis)", served)):
        print(f"{label:45}{statistics.median(values):6.1f} µs a hop (min {min(values):.1f}; "
              f"rounds: {', '.join(f'{v:.1f}' for v in values)})")
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await conversation_loop(conversation, walks, 9_000_000)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        profiler = cProfile.Profile()
        profiler.enable()
        turn_alone(conversation, walks, 8_000_000)
        profiler.disable()
        print("turn alone:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        profiler = cProfile.Profile()
        profiler.enable()
        await app_loop(app, walks, 7_000_000)
        profiler.disable()
        print("ASGI app:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    if spy:
        spied(conversation, spy)
    await conversation.aclose()
    await redis.aclose()


def spied(conversation: Any, seconds: int) -> None:
    """py-spy (200 Hz) on the turn-alone loop: own and inclusive shares by function."""
    from collections import Counter

    raw = Path(tempfile.mkdtemp(prefix="turn-spy-")) / "stacks.txt"
    spy = subprocess.Popen(["py-spy", "record", "--rate", "400", "--format", "raw",
                            "--duration", str(seconds), "--pid", str(os.getpid()),
                            "-o", str(raw)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    until = time.monotonic() + seconds + 1
    first = 10_000_000
    while time.monotonic() < until:
        turn_alone(conversation, 50, first)
        first += 50
    spy.wait(30)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "turn_alone" not in stack:
            continue
        frames = stack.split(";")
        frames = frames[next(i for i, f in enumerate(frames) if "turn_alone" in f):]
        total += int(count)
        own[frames[-1].split(" (")[0] + " " + frames[-1].rsplit("/", 1)[-1]] += int(count)
        for name in {f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].split(":")[0]
                     for f in frames}:
            inclusive[name] += int(count)
    print(f"py-spy, turn alone: {total} samples")
    print("own:")
    for name, count in own.most_common(35):
        print(f"  {count / total:6.1%}  {name}")
    print("inclusive:")
    for name, count in inclusive.most_common(45):
        print(f"  {count / total:6.1%}  {name}")




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--walks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--spy", type=int, default=0,
                        help="also py-spy the turn-alone loop this many seconds")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="turn-bench-"))
    port = bench.free_port()
    redis = bench.scratch_redis(work, port)
    try:
        time.sleep(0.3)
        import uvloop

        uvloop.run(run(f"redis://127.0.0.1:{port}/0", work / "var", args.walks, args.rounds,
                       args.profile, args.spy))
    finally:
        bench.stop(redis)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
