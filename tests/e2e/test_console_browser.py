"""The operator console in a real headless Chromium, against the real app and Redis."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright
from redis.asyncio import Redis

from bot.app import create_app
from bot.cases.model import CaseKind
from bot.settings import Settings
from bot.store import cases, operators
from bot.store.operators import Role
from tests.integration.admin_support import T0, RecordedJobs, return_request
from tests.redis_server import RedisServer, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a sandboxed machine with no outside network (see the workplace notes).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
HOSTILE_ANSWER = '<img src=x onerror="document.title=\'pwned\'">'


class Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # runs in a thread
        pass


@pytest.fixture
def console(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[str, str, str, str]]:
    """A served app with an operator, a supervisor and two cases: (url, tokens…, reference)."""
    redis_server.flush()

    async def seed() -> tuple[str, str, str]:
        redis = Redis.from_url(redis_server.url, decode_responses=True)
        operator = await operators.add_operator(redis, name="ana", role=Role.OPERATOR, now=T0)
        supervisor = await operators.add_operator(redis, name="sam", role=Role.SUPERVISOR, now=T0)
        await cases.create_case(redis, new_case=return_request(minutes=0))
        urgent = await cases.create_case(redis, new_case=return_request(
            minutes=5, kind=CaseKind.RETURN_REQUEST, under_18="yes", city=HOSTILE_ANSWER))
        await redis.aclose()
        return operator, supervisor, urgent

    operator, supervisor, urgent = asyncio.run(seed())
    settings = Settings(redis_url=redis_server.url, data_dir=tmp_path)
    port = free_port()
    server = Server(uvicorn.Config(create_app(settings, case_jobs=RecordedJobs()),
                                   host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield url, operator, supervisor, urgent
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        yield context.new_page()
        browser.close()


def sign_in(page: Page, url: str, token: str) -> None:
    page.goto(f"{url}/admin/")
    page.fill("input[name=token]", token)
    page.click("#sign-in button")
    expect(page.locator("h1")).to_have_text("Triage queue")


def test_an_operator_triages_and_works_a_case(
        console: tuple[str, str, str, str], page: Page) -> None:
    url, operator, _, urgent = console
    sign_in(page, url, operator)
    rows = page.locator("#cases li")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(f"{urgent[:4]}-{urgent[4:]}")
    expect(rows.first).to_contain_text("urgent")

    rows.first.locator("a").click()
    expect(page.locator("#case-title")).to_have_text(f"Case {urgent[:4]}-{urgent[4:]}")
    # A migrant's answer is shown as text, never run as HTML.
    expect(page.locator("#case-answers")).to_contain_text(HOSTILE_ANSWER)
    assert page.title() == "Helpline console"

    page.select_option("#status-form select", "contacted")
    page.click("#status-form button")
    expect(page.locator("#flash")).to_have_text("Status changed.")
    expect(page.locator("#case-fields")).to_contain_text("contacted")

    page.fill("#note-form textarea", "Called back, will call again tomorrow.")
    page.click("#note-form button")
    expect(page.locator("#case-journal")).to_contain_text("Called back")
    events = page.locator("#case-events")
    expect(events).to_contain_text("ana")
    expect(events).to_contain_text("read")

    # An operator may not erase: the console says why, from the API's 403.
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#erase-form button")
    expect(page.locator("#flash")).to_have_class("error")


def test_a_bad_token_is_refused_with_a_message(console: tuple[str, str, str, str],
                                               page: Page) -> None:
    url, *_ = console
    page.goto(f"{url}/admin/")
    page.fill("input[name=token]", "not-a-token")
    page.click("#sign-in button")
    expect(page.locator("#flash")).to_contain_text("sign in again")
    expect(page.locator("#sign-in")).to_be_visible()


def test_the_console_fits_a_phone_screen(console: tuple[str, str, str, str],
                                         page: Page) -> None:
    url, _, supervisor, _ = console
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, url, supervisor)
    page.locator("#cases li a").first.click()
    expect(page.locator("#case-title")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#erase-form button")
    expect(page.locator("#flash")).to_have_text("Personal data erased.")
    expect(page.locator("#case-fields")).not_to_contain_text("+223")


def test_the_console_page_forbids_framing_and_foreign_scripts(
        console: tuple[str, str, str, str]) -> None:
    url, *_ = console
    response = httpx.get(f"{url}/admin/")
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
