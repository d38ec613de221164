"""The console's programme report (docs/spec.md §11) in Debian's headless Chromium: charts from
GET /reports/programme, suppressed cells shown as hidden, French and English, axe."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from redis.asyncio import Redis

from bot.cases import followups
from bot.cases.model import CaseKind
from bot.store import cases
from bot.store import followups as followup_store
from tests.e2e.console_support import (
    PHONE_SCREEN,
    Console,
    new_page,
    no_horizontal_scroll,
    no_violations,
    screenshot,
    serve,
    sign_in,
)
from tests.integration.admin_support import return_request

CONSENTING: list[str] = []


@pytest.fixture
def console(redis_server: Any, tmp_path: Path) -> Iterator[Console]:
    async def seed(redis: Redis) -> None:
        """This month: six return requests from Mali (three under 18: suppressed), two
        call-backs (suppressed), and one return request consenting to follow-ups."""
        now = datetime.now(UTC)
        for n in range(6):
            await cases.create_case(redis, new_case=replace(return_request(
                phone=f"+2237020{n:04d}", nationality="Mali", country="Niger",
                under_18="yes" if n < 3 else "no"), created_at=now))
        for n in range(2):
            await cases.create_case(redis, new_case=replace(return_request(
                phone=f"+2237030{n:04d}", kind=CaseKind.CALLBACK), created_at=now))
        CONSENTING[:] = [await cases.create_case(redis, new_case=replace(return_request(
            phone="+22370400000", followup_consent="yes"), created_at=now))]
        # One from last year (outside the report's months) whose check-in call nobody
        # took, so it is placed once more.
        called = await cases.create_case(redis, new_case=replace(return_request(
            phone="+22370400001", followup_consent="yes"), created_at=now - timedelta(days=400)))
        CONSENTING.append(called)
        await followup_store.add(redis, reference=called, now=int(now.timestamp()),
                                 channel="v", ttl=3600, actor="operator:ana",
                                 action=followups.REQUESTED, at=now.isoformat())
        await followup_store.mark(redis, reference=called, ids="1", sources="s", target="t",
                                  now=int(now.timestamp()), ttl=3600)
        await followups.call_unanswered(redis, followup=followups.token(called, 1),
                                        why=followups.Unanswered.NO_ANSWER, now=now, ttl=3600)

    yield from serve(redis_server, tmp_path, also_seed=seed)


@pytest.mark.deployments  # on one server and on a 3-master Cluster
def test_a_supervisor_sees_the_report_charted_with_small_numbers_hidden(
        console: Console, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(page, console, console.supervisor)
    page.click("a[href='#/reports']")
    expect(page.locator("h1")).to_have_text("Programme report")
    expect(page.locator("#fig-requests dd")).to_have_text("7")
    expect(page.locator("#fig-callbacks dd")).to_have_text("< 5")  # 2 call-backs: hidden
    expect(page.locator("#fig-emergencies dd")).to_have_text("0")
    expect(page.locator("figure.chart svg[role=img]")).to_have_count(7)
    vulnerable = page.locator("#chart-vulnerability")
    expect(vulnerable).to_contain_text("under 18")
    # Five rows; "under 18" (3) is hidden: no bar, "< 5"; the four zeros are zeros.
    # (Seven requests: the six from Mali and one with no nationality: `unknown`, hidden.)
    expect(vulnerable.locator("rect.bar")).to_have_count(4)
    expect(vulnerable.locator("text.suppressed")).to_have_text(["< 5"])
    expect(page.locator("#chart-nationality")).to_contain_text("Mali")
    hidden = page.locator("#report-table td.suppressed")
    expect(hidden.first).to_have_text("< 5")
    expect(hidden.first).to_have_attribute("title", "fewer than 5 (hidden)")
    expect(page.locator("#report-table tbody tr")).to_have_count(13)  # 12 months and the total
    assert "+2237020" not in page.content()
    no_violations(page, "report")
    screenshot(page, "report-laptop")
    with page.expect_download() as download:
        page.click("#report-csv")
    assert download.value.suggested_filename.startswith("programme-")
    csv = Path(download.value.path()).read_text()
    assert ",callbacks,," in csv.replace("\r", "")  # hidden: blank
    page.set_viewport_size(PHONE_SCREEN)
    no_horizontal_scroll(page)
    screenshot(page, "report-phone")


def test_the_report_in_french_and_a_chosen_period(console: Console, browser: Browser) -> None:
    page = new_page(browser, locale="fr-FR")
    sign_in(page, console, console.admin)
    page.click("a[href='#/reports']")
    expect(page.locator("h1")).to_have_text("Rapport du programme")
    expect(page.locator("#fig-callbacks dt")).to_have_text("Rappels")
    this_month = datetime.now(UTC).strftime("%Y-%m")
    page.fill("#report-from", this_month)
    page.click("#report-form button[type=submit]")
    expect(page.locator("#report-table tbody tr")).to_have_count(2)  # the month and the total
    expect(page.locator("#report-form .result")).to_contain_text("Rapport de")
    no_violations(page, "rapport")


def test_an_operator_has_no_report(console: Console, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(page, console, console.operator)
    expect(page.locator("a[href='#/reports']")).to_have_count(0)
    page.goto(f"{console.url}/admin/#/reports")
    expect(page.locator("[role=alert]")).to_contain_text("supervisor")


def test_a_case_page_lists_its_check_ins_and_asks_for_one_now(
        console: Console, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(page, console, console.operator)
    page.goto(f"{console.url}/admin/#/case/{CONSENTING[0]}")
    section = page.locator("section[aria-labelledby=h-followups]")
    expect(section).to_contain_text("No check-in planned.")
    page.select_option("#followup-channel", "voice")
    page.click("#followup-form button[type=submit]")
    expect(page.locator("#followup-form .result")).to_contain_text("Check-in asked (no. 1)")
    expect(page.locator("#case-followups li")).to_have_count(1)
    expect(page.locator("#case-followups li")).to_contain_text("no. 1 · call · due")
    expect(page.locator("#case-followups li")).to_contain_text("scheduled")
    no_violations(page, "case with check-ins")
    page.goto(f"{console.url}/admin/#/case/{CONSENTING[1]}")
    expect(page.locator("#case-followups li")).to_have_count(2)
    first, second = page.locator("#case-followups li").all()
    expect(first).to_contain_text("no. 1 · call · due")
    expect(first).to_contain_text("no answer")
    expect(first).not_to_contain_text("second try")
    expect(second).to_contain_text("no. 2 · call · due")
    expect(second).to_contain_text("scheduled · second try (the first did not get through)")
    page.goto(f"{console.url}/admin/#/case/{console.normal}")  # no follow-up consent
    expect(page.locator("section[aria-labelledby=h-followups]")).to_contain_text(
        "No check-in planned.")
    expect(page.locator("#followup-form")).to_have_count(0)
