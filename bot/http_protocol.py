"""uvicorn's HTTP protocol (httptools) with a response's writes sent together.

uvicorn writes a response's head when the app sends `http.response.start` and
its body when it sends `http.response.body`: two socket writes, two TCP
segments on the wire, for every answer of the gateway (a USSD screen is one
small body). Here the writes a connection makes in one turn of the event loop
are joined and written once, at the end of that turn: one system call an
answer, same bytes, same order. Closing writes what is held first; aborting
drops it, as aborting a transport drops its buffer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeldWrites:
    """A transport whose writes of one loop turn go out in one write."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def flush(self) -> None:
        held, self._held = self._held, []
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeldWritesProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` writing through `HeldWrites` (`helpline serve`'s `http`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(HeldWrites(transport, self.loop))  # type: ignore[arg-type]
