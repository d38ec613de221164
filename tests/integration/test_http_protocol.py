"""`helpline serve`'s HTTP protocol (bot.http_protocol): a response's writes go out as one.

The recording transport shows the number of writes; the real uvicorn server on
a loopback port shows that the bytes, their order, keep-alive, pipelined
requests and a closing connection are what uvicorn's own protocol gives.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from bot.http_protocol import HeldWrites, HeldWritesProtocol


class Recording:
    """A transport that records its writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name in ("peername", "sockname") else default


async def test_writes_of_one_turn_of_the_loop_are_one_write() -> None:
    recording = Recording()
    held = HeldWrites(recording, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n")
    held.write(memoryview(b"CON"))
    assert recording.writes == []
    await asyncio.sleep(0)
    assert recording.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nCON"]
    assert held.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the transport's


async def test_closing_writes_what_is_held_and_aborting_drops_it() -> None:
    recording = Recording()
    held = HeldWrites(recording, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"bye")
    held.close()
    assert recording.writes == [b"bye"] and recording.closed
    await asyncio.sleep(0)
    assert recording.writes == [b"bye"]  # not twice

    recording = Recording()
    held = HeldWrites(recording, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"lost")
    held.abort()
    await asyncio.sleep(0)
    assert recording.writes == [] and recording.aborted


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = b"CON " + body + b" " + scope["path"].encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(answer))]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free, loop="uvloop",
                                           http=HeldWritesProtocol, log_config=None,
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        thread.join(0.01)
    yield free
    server.should_exit = True
    thread.join(10)


def request(path: str, body: bytes, close: bool = False) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n"
            + ("connection: close\r\n" if close else "") + "\r\n").encode() + body


async def test_pipelined_requests_get_whole_answers_in_order_then_the_close(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request("/a", b"1") + request("/b", b"22") + request("/c", b"3", close=True))
    answers = (await asyncio.wait_for(reader.read(), 5)).split(b"HTTP/1.1 ")[1:]
    writer.close()
    assert [answer.split(b"\r\n\r\n", 1)[1] for answer in answers] == [
        b"CON 1 /a", b"CON 22 /b", b"CON 3 /c"]
    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [b"200 OK"] * 3
    assert b"connection: close" in answers[2]


async def test_a_bad_request_is_answered_400_and_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")
