"""What the local fakes of the REST APIs we call share (tests/fake_twilio.py,
tests/fake_primero.py): a real HTTP server on a loopback port, in a thread of the test
process (a worker in a subprocess reaches it too), that records every request, answers
as its subclass says (`answer`), and takes planned answers in order (`plan`).

`Normal` (the default), `Late` and `Held` are plans every fake knows: with the last two
the request does what it asks all the same, and the answer comes too late, or once the
test releases it (`wait_as_planned`).
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

from tests.redis_server import stopped_on_exit

HELD_AT_MOST_SECONDS = 60


@dataclass(frozen=True)
class Request:
    """A request as it arrived."""

    method: str
    path: str
    """Without the query string (`query` holds its fields)."""
    query: dict[str, str]
    headers: dict[str, str]
    """Names in lower case."""
    body: bytes
    form: dict[str, str]
    """The body's fields, when it is form-urlencoded (else empty)."""

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None
    """Sent as JSON (nothing when None)."""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Normal:
    """Answer as the real API would (the default)."""


@dataclass(frozen=True)
class Late:
    """Do what the request asks, but answer only after `seconds` (past the client's timeout)."""

    seconds: float


@dataclass
class Held:
    """Do what the request asks when it arrives; answer once `release` is set."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


def wait_as_planned(plan: object) -> None:
    """Before answering: sleep if the plan is `Late`; if `Held`, say so and wait for it."""
    if isinstance(plan, Late):
        time.sleep(plan.seconds)
    elif isinstance(plan, Held):
        plan.arrived.set()
        plan.release.wait(timeout=HELD_AT_MOST_SECONDS)


PlanT = TypeVar("PlanT")
ServerT = TypeVar("ServerT", bound="FakeRest[Any]")


class FakeRest(Generic[PlanT]):
    """A threaded loopback HTTP server whose requests go, recorded, to `answer`."""

    content_type = "application/json"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self._plans: list[PlanT] = []
        self._held: list[Held] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def plan(self, *plans: PlanT) -> None:
        """Answer the next requests (of the kind this server plans for) as given, in order."""
        with self.lock:
            self._plans.extend(plans)

    def _next_plan(self) -> PlanT | Normal:
        """The next planned answer (`Normal` once none is left)."""
        with self.lock:
            plan = self._plans.pop(0) if self._plans else Normal()
            if isinstance(plan, Held):
                self._held.append(plan)  # released at `stop` if the test did not
            return plan

    def answer(self, request: Request) -> Answer:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                form_encoded = "form-urlencoded" in (self.headers.get("Content-Type") or "")
                request = Request(
                    method=self.command, path=parts.path,
                    query={k: v[0] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    form={k: v[0] for k, v in parse_qs(body.decode()).items()}
                    if form_encoded else {})
                with outer.lock:
                    outer.requests.append(request)
                answer = outer.answer(request)
                data = b"" if answer.body is None else json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    if answer.status != 204:
                        self.send_header("Content-Type", outer.content_type)
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if answer.status != 204:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout under test)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self.lock:
            for plan in [*self._plans, *self._held]:
                if isinstance(plan, Held):
                    plan.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def running(server: ServerT) -> AbstractContextManager[ServerT]:
    """`server`, serving for the `with` block."""
    return contextmanager(stopped_on_exit)(server)
