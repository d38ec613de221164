"""At most two commands sent to Redis per hop, on every hop of a return request (MONITOR).

Counted on a real redis-server with MONITOR: a marker (ECHO) from another
client before each hop splits the stream; commands run inside scripts (MONITOR
names their client `lua`) and the replica-count refresh (INFO, in the
background) are not counted.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

from redis.asyncio import Redis

from bot.conversation import Conversation, InboundMessage
from bot.settings import Settings
from bot.store.cases import read_case
from bot.types import Channel
from tests.factories import default_flow
from tests.integration.webhooks_support import RETURN_REQUEST, reference_in
from tests.redis_server import RedisServer

MARK = "hop-mark"


class Monitor:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"MONITOR\r\n")
        self.data = b""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            self.data += chunk

    def commands(self) -> list[str]:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()
        found = []
        for line in self.data.decode("utf-8", "replace").split("\r\n"):
            if not line.startswith("+") or "]" not in line:
                continue
            client = line[line.index("[") + 1:line.index("]")]
            if client.endswith(" lua"):
                continue
            words = line[line.index("]") + 1:].strip().split(" ")
            found.append(" ".join(word.strip('"').lower() for word in words[:2]))
        return found


async def test_every_hop_of_a_ussd_return_request_sends_at_most_two_commands(
        single_redis: RedisServer, tmp_path: Path) -> None:
    single_redis.flush()
    redis = Redis.from_url(single_redis.url, decode_responses=True)
    marks = Redis.from_url(single_redis.url, decode_responses=True)
    settings = Settings(redis_url=single_redis.url, data_dir=tmp_path / "var")
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    phone, session = "+22376300001", "ATUid_count"

    async def hop(history: str, *, first: bool = False) -> str:
        nonlocal phone, session
        await marks.echo(MARK)
        return (await conversation.handle(InboundMessage(
            Channel.USSD, phone, history, restart=first, ussd_session=session,
            message_id=f"{session}\x1f{history}"))).text

    try:
        inputs = ["1", *RETURN_REQUEST]

        async def walk() -> list[str]:
            said = [await hop("", first=True)]
            for number in range(1, len(inputs) + 1):
                said.append(await hop("*".join(inputs[:number])))
            return said

        await walk()  # scripts loaded (once per server), the replica count read
        phone, session = "+22376300002", "ATUid_count_2"
        monitor = Monitor(single_redis.port)
        await asyncio.sleep(0.1)
        said = await walk()
        await marks.echo(MARK)
        await asyncio.sleep(0.2)
        sent = monitor.commands()
        reference = reference_in(said[-1])
        assert (await read_case(redis, reference)).answers["name"] == "Awa Diarra"
    finally:
        await conversation.aclose()
        await redis.aclose()
        await marks.aclose()
    per_hop: list[list[str]] = []
    for command in sent:
        if command == f"echo {MARK}":
            per_hop.append([])
        elif per_hop and not command.startswith("info"):
            per_hop[-1].append(command)
    per_hop = per_hop[:-1]  # after the last marker: nothing
    assert len(per_hop) == len(inputs) + 1
    assert all(1 <= len(commands) <= 2 for commands in per_hop), per_hop
    # The hop that asks for the phone's open request reads it, then steps (two); the
    # confirmation creates the case in the step's own script (one).
    assert len(per_hop[-1]) == 1, per_hop[-1]
