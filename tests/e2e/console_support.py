"""The console's browser tests: a served app on the real Redis, Debian's Chromium, axe."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect
from redis.asyncio import Redis

from bot.admin import operators
from bot.admin.operators import Role
from bot.app import create_app
from bot.cases.model import CaseKind
from bot.settings import Settings
from bot.store import cases
from bot.store.connection import close_client
from tests.integration.admin_support import T0, RecordedJobs, return_request
from tests.redis_server import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a sandboxed machine with no outside network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
HOSTILE_ANSWER = '<img src=x onerror="document.title=\'pwned\'">'
LAPTOP = {"width": 1366, "height": 768}
PHONE_SCREEN = {"width": 375, "height": 812}
MIGRANT_PHONE = "+22376123456"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "console-screenshots"
USSD = "/webhooks/ussd/africastalking"
_axe = Axe()
# A shared CI machine can be slow: waits are generous, the live test keeps its own 15 s.
expect.set_options(timeout=10_000)
_contexts: list[BrowserContext] = []  # closed when their test's server stops
T = TypeVar("T")


class Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # runs in a thread
        pass


@dataclass(frozen=True)
class Console:
    url: str
    operator: str
    supervisor: str
    admin: str
    urgent: str      # a minor's return request, SMS not safe, hostile city
    normal: str      # an adult's return request from MIGRANT_PHONE
    redis_url: str


def in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to the end on a loop of its own (Playwright's sync API holds one here)."""
    found: list[T] = []
    thread = threading.Thread(target=lambda: found.append(asyncio.run(make())))
    thread.start()
    thread.join(timeout=30)
    assert found, "seeding did not finish"
    return found[0]


def serve(redis_server: Any, tmp_path: Path, *,
          also_seed: Callable[[Redis], Awaitable[None]] | None = None,
          **settings: object) -> Iterator[Console]:
    """Seed operators and two cases (and what `also_seed` writes), serve the app on a free
    port, stop it afterwards."""
    redis_server.flush()

    async def seed() -> tuple[str, str, str, str, str]:
        redis = redis_server.async_client()
        operator = await operators.add_operator(redis, name="ana", role=Role.OPERATOR, now=T0)
        supervisor = await operators.add_operator(redis, name="sam", role=Role.SUPERVISOR, now=T0)
        admin = await operators.add_operator(redis, name="root", role=Role.ADMIN, now=T0)
        normal = await cases.create_case(redis, new_case=return_request(
            phone=MIGRANT_PHONE, minutes=0, name="Moussa Keita"))
        urgent = await cases.create_case(redis, new_case=return_request(
            minutes=5, kind=CaseKind.RETURN_REQUEST, under_18="yes", sms_safe="no",
            city=HOSTILE_ANSWER))
        if also_seed is not None:
            await also_seed(redis)
        await close_client(redis)
        return operator, supervisor, admin, urgent, normal

    operator, supervisor, admin, urgent, normal = in_thread(seed)
    config = Settings(redis_url=redis_server.url, data_dir=tmp_path, **settings)  # type: ignore[arg-type]
    port = free_port()
    server = Server(uvicorn.Config(create_app(config, case_jobs=RecordedJobs()),
                                   host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield Console(f"http://127.0.0.1:{port}", operator, supervisor, admin, urgent, normal,
                      redis_server.url)
    finally:
        # Pages stop polling before the server stops: no request is cut mid-way.
        while _contexts:
            _contexts.pop().close()
        server.should_exit = True
        thread.join(timeout=10)


def new_page(browser: Browser, *, locale: str = "en-GB", viewport: dict[str, int] = LAPTOP) -> Page:
    context = browser.new_context(locale=locale, viewport=viewport)  # type: ignore[arg-type]
    _contexts.append(context)
    context.set_default_timeout(10_000)
    return context.new_page()


def sign_in(page: Page, console: Console, token: str) -> None:
    page.goto(f"{console.url}/admin/")
    page.fill("#token", token)
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#queue-title")).to_be_visible()


def _no_axe_violations(page: Page, name: str, impacts: tuple[str, ...] | None) -> None:
    """axe-core (bundled with axe-playwright-python): no violation of `impacts` (None: any)."""
    found = [v for v in _axe.run(page).response["violations"]
             if impacts is None or v["impact"] in impacts]
    assert found == [], f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in found)


def no_serious_violations(page: Page, name: str) -> None:
    """axe-core: 0 serious or critical violations."""
    _no_axe_violations(page, name, ("serious", "critical"))


def no_violations(page: Page, name: str) -> None:
    """axe-core: no violation at all, whatever its impact."""
    _no_axe_violations(page, name, None)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


WIDEST = """[...document.querySelectorAll('body *')].filter(
  (e) => e.getBoundingClientRect().right > window.innerWidth + 0.5).map(
  (e) => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5)"""


def no_horizontal_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, page.evaluate(WIDEST)


def in_viewport(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    return bool(box["y"] >= 0 and box["y"] + box["height"] <= size["height"]
                and box["x"] >= 0 and box["x"] + box["width"] <= size["width"])


def ussd_emergency(url: str, phone: str, session: str) -> None:
    """A migrant raises an emergency over USSD: language, menu 5, alert the team, a place."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for text in ["", "1", "1*5", "1*5*1", "1*5*1*Gao"]:
            answer = client.post(USSD, data={"sessionId": session, "serviceCode": "*384*55#",
                                             "phoneNumber": phone, "networkCode": "61001",
                                             "text": text})
            assert answer.status_code == 200, answer.text
        assert answer.text.startswith("END "), answer.text
