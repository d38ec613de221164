"""Counting the commands each hop sends to Redis (MONITOR), for the two-commands-a-hop tests.

Counted on a real redis-server with MONITOR: a marker (ECHO) from another
client before each hop splits the stream; commands run inside scripts (MONITOR
names their client `lua`) and the replica-count refresh (INFO, in the
background) are not counted.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from redis.asyncio import Redis

from bot.conversation import Conversation, InboundMessage
from bot.settings import Settings
from bot.types import Channel
from tests.factories import default_flow
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


def split_by_hop(sent: list[str]) -> list[list[str]]:
    """The commands between one marker and the next (INFO aside), a list a hop."""
    per_hop: list[list[str]] = []
    for command in sent:
        if command == f"echo {MARK}":
            per_hop.append([])
        elif per_hop and not command.startswith("info"):
            per_hop[-1].append(command)
    return per_hop[:-1]  # after the last marker: nothing


class HopCounter:
    """The default flow's conversation on one real server, walked over USSD."""

    def __init__(self, server: RedisServer, settings: Settings) -> None:
        self.port = server.port
        self.redis = Redis.from_url(server.url, decode_responses=True)
        self.marks = Redis.from_url(server.url, decode_responses=True)
        self.conversation = Conversation(redis=self.redis, compiled=default_flow(),
                                         settings=settings)

    async def hop(self, phone: str, session: str, history: str, *, first: bool = False) -> str:
        await self.marks.echo(MARK)
        return (await self.conversation.handle(InboundMessage(
            Channel.USSD, phone, history, restart=first, ussd_session=session,
            message_id=f"{session}\x1f{history}"))).text

    async def walk(self, inputs: Sequence[str], phone: str, session: str) -> list[str]:
        """One session through `inputs`, a hop each (and the first, empty); what was said."""
        said = [await self.hop(phone, session, "", first=True)]
        for number in range(1, len(inputs) + 1):
            said.append(await self.hop(phone, session, "*".join(inputs[:number])))
        return said

    async def counted_walk(self, inputs: Sequence[str], phone: str, session: str
                           ) -> tuple[list[str], list[list[str]]]:
        """`walk` under MONITOR: what was said, and the commands each hop sent."""
        monitor = Monitor(self.port)
        await asyncio.sleep(0.1)
        said = await self.walk(inputs, phone, session)
        await self.marks.echo(MARK)
        await asyncio.sleep(0.2)
        return said, split_by_hop(monitor.commands())

    async def aclose(self) -> None:
        await self.conversation.aclose()
        await self.redis.aclose()
        await self.marks.aclose()


@asynccontextmanager
async def hop_counter(server: RedisServer, tmp_path: Path) -> AsyncIterator[HopCounter]:
    """A `HopCounter` on `server`, emptied first, its clients closed afterwards."""
    server.flush()
    counter = HopCounter(server, Settings(redis_url=server.url, data_dir=tmp_path / "var"))
    try:
        yield counter
    finally:
        await counter.aclose()
