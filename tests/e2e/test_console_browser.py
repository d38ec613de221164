"""The operators' console in Debian's headless Chromium, against the real app and Redis.

Acceptance of issue 10: sign-in, live queue, search by phone, refusals in view,
no double submission, French and English, dashboard chart, axe on every page.
Screenshots land in var/console-screenshots/ for review.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from bot.engine import sms
from bot.settings import Settings
from tests.e2e.console_support import (
    HOSTILE_ANSWER,
    LAPTOP,
    MIGRANT_PHONE,
    PHONE_SCREEN,
    Console,
    in_thread,
    in_viewport,
    new_page,
    no_horizontal_scroll,
    no_serious_violations,
    screenshot,
    serve,
    sign_in,
    ussd_emergency,
)
from tests.fake_primero import PASSWORD, USER, Fail, fake_primero
from tests.integration.referral_support import ORG, referral_worker
from tests.redis_server import RedisServer


@pytest.fixture
def console(redis_server: Any, tmp_path: Path) -> Iterator[Console]:
    yield from serve(redis_server, tmp_path)


def pretty(reference: str) -> str:
    return f"{reference[:4]}-{reference[4:]}"


def test_a_wrong_token_shows_an_error_and_the_right_one_opens_the_queue(
        console: Console, browser: Browser) -> None:
    page = new_page(browser)
    page.goto(f"{console.url}/admin/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    no_serious_violations(page, "sign-in")
    page.fill("#token", "not-a-token")
    page.click("#sign-in button[type=submit]")
    error = page.locator("#sign-in-message")
    expect(error).to_be_visible()
    expect(error).to_have_text(re.compile("not recognised"))
    expect(error).to_have_class(re.compile("error"))
    expect(page.locator("#sign-in")).to_be_visible()
    screenshot(page, "sign-in-refused")

    page.fill("#token", console.operator)
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#queue-title")).to_have_text("Queue")
    expect(page.locator("#who")).to_have_text("Signed in: ana (operator)")
    rows = page.locator("#cases li")
    expect(rows).to_have_count(2)
    # Triage order, plain words, the reason of the priority, the SLA state.
    expect(rows.first).to_contain_text(pretty(console.urgent))
    expect(rows.first).to_contain_text("Urgent · under 18")
    expect(rows.first).to_contain_text("Return request · New · USSD, French")
    expect(rows.first).to_contain_text("overdue by")
    expect(page.locator("#cases")).not_to_contain_text("return_request")
    no_serious_violations(page, "queue")
    screenshot(page, "queue-laptop")
    page.set_viewport_size(PHONE_SCREEN)
    no_horizontal_scroll(page)
    no_serious_violations(page, "queue at 375 px")
    screenshot(page, "queue-phone")


@pytest.mark.deployments  # on one server and on a 3-master Cluster
def test_an_emergency_raised_over_ussd_appears_live_signalled_as_new(
        console: Console, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(page, console, console.operator)
    expect(page.locator("#cases li")).to_have_count(2)
    page.wait_for_timeout(300)  # the first poll has taken its starting point
    ussd_emergency(console.url, "+22365000001", "ATUid_live_1")
    fresh = page.locator("#cases li.fresh")
    expect(fresh).to_have_count(1, timeout=15000)
    expect(fresh).to_contain_text("New")
    expect(fresh).to_contain_text("Emergency")
    expect(fresh).to_contain_text("emergency raised")
    assert page.title().startswith("(1) ")
    expect(page.locator("#announce")).to_contain_text("New urgent case")
    screenshot(page, "queue-new-emergency")
    # Opening it clears the signal.
    fresh.locator("a").click()
    expect(page.locator("#case-title")).to_contain_text("Case ")
    expect(page.locator("#case-answers")).to_contain_text("Gao")
    assert not page.title().startswith("(")


@pytest.mark.deployments
def test_the_last_8_digits_of_a_phone_find_its_case(console: Console, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(page, console, console.operator)
    page.fill("#q", MIGRANT_PHONE[-8:])
    page.click("form[role=search] button")
    rows = page.locator("#cases li")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(pretty(console.normal))
    expect(rows.first).to_contain_text("by phone")
    expect(page.locator("#queue-status")).to_contain_text("1 case(s) found")
    page.fill("#q", "keita")
    page.click("form[role=search] button")
    expect(rows.first).to_contain_text("by name")
    page.fill("#q", pretty(console.urgent))
    page.click("form[role=search] button")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(pretty(console.urgent))


@pytest.mark.parametrize("viewport", [LAPTOP, {"width": 1280, "height": 720}, PHONE_SCREEN],
                         ids=["1366", "1280", "375"])
def test_a_refused_sms_shows_in_view_and_a_double_click_saves_one_note(
        console: Console, browser: Browser, viewport: dict[str, int]) -> None:
    page = new_page(browser, viewport=viewport)
    sign_in(page, console, console.operator)
    page.goto(f"{console.url}/admin/#/case/{console.urgent}")
    expect(page.locator("#case-title")).to_have_text(f"Case {pretty(console.urgent)}")
    # A migrant's answer is shown as text, never run as HTML.
    expect(page.locator("#case-answers")).to_contain_text(HOSTILE_ANSWER)
    expect(page.locator("#case-fields")).to_contain_text("Urgent (under 18)")
    expect(page.locator("#message-form")).to_contain_text("not safe")
    page.fill("#sms", "We will call you tomorrow.")
    expect(page.locator("#sms-counter")).to_contain_text("26 characters · 1 SMS (GSM-7)")
    page.click("#message-form button[type=submit]")
    refusal = page.locator("#message-form .result")
    expect(refusal).to_contain_text("Refused: the migrant said SMS to this phone is not safe")
    assert in_viewport(page, "#message-form .result")
    no_horizontal_scroll(page)
    no_serious_violations(page, f"case page at {viewport['width']} px")
    screenshot(page, f"sms-refused-{viewport['width']}")

    page.fill("#note", "Called back, will call again tomorrow.")
    page.dblclick("#note-form button[type=submit]")
    expect(page.locator("#note-form .result")).to_have_text("Note added.")
    assert in_viewport(page, "#note-form .result")
    expect(page.locator("#case-journal li")).to_have_count(1)
    case = httpx.get(f"{console.url}/admin/api/v1/cases/{console.urgent}",
                     headers={"Authorization": f"Bearer {console.operator}"}).json()
    assert [entry["kind"] for entry in case["journal"]] == ["note"]


@pytest.mark.parametrize(("locale", "lang", "title"),
                         [("fr-FR", "fr", "File d'attente"), ("en-US", "en", "Queue")])
def test_the_console_speaks_the_browsers_language(
        console: Console, browser: Browser, locale: str, lang: str, title: str) -> None:
    page = new_page(browser, locale=locale)
    page.goto(f"{console.url}/admin/")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.fill("#token", console.operator)
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#queue-title")).to_have_text(title)
    if lang == "fr":
        expect(page.locator("#cases li").first).to_contain_text("Urgente · moins de 18 ans")
        page.goto(f"{console.url}/admin/#/case/{console.urgent}")
        # The flow's own question and choice labels, in the flow's order.
        answers = page.locator("#case-answers dt")
        expect(answers.first).to_have_text("Votre nom et prénom ?")
        expect(page.locator("#case-answers")).to_contain_text("Oui")
        screenshot(page, "case-fr")
        page.click("#language")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        # The flow's order (name, city, under 18, SMS safe), not the alphabet's.
        expect(page.locator("#case-answers dt")).to_have_text([
            "Your full name?", "Which town or city?",
            "To help the most vulnerable first: are you under 18?",
            "Is it safe for you if we send SMS to this phone?"])


def test_the_dashboard_draws_charts_from_stats_and_pages_pass_axe(
        console: Console, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(page, console, console.supervisor)
    page.goto(f"{console.url}/admin/#/case/{console.urgent}")
    expect(page.locator("#case-title")).to_be_visible()
    expect(page.locator("#case-events")).to_contain_text("viewed the case")
    no_serious_violations(page, "case page")
    screenshot(page, "case-laptop")
    page.click("a[href='#/dashboard']")
    charts = page.locator("figure.chart svg[role=img]")
    expect(charts).to_have_count(4)
    priority = page.locator("figure.chart").nth(1)
    expect(priority).to_contain_text("Urgent")
    expect(priority.locator("rect.bar")).to_have_count(3)
    expect(page.locator(".figures")).to_contain_text("2")
    expect(page.locator(".figures")).to_contain_text("Median time to first contact")
    no_serious_violations(page, "dashboard")
    screenshot(page, "dashboard-laptop")
    page.set_viewport_size(PHONE_SCREEN)
    no_horizontal_scroll(page)
    screenshot(page, "dashboard-phone")
    with page.expect_download() as download:
        page.click("#export-form button")
    assert download.value.suggested_filename == "cases.csv"
    expect(page.locator("#export-form .result")).to_contain_text("Export downloaded")


def test_a_bad_or_unknown_reference_shows_not_found_and_nothing_live(
        console: Console, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(page, console, console.operator)
    for raw in ("12345678", "12345671", "nonsense"):
        page.goto(f"{console.url}/admin/#/case/{raw}")
        expect(page.locator("#case-title")).to_have_text("Case not found")
        expect(page.locator("#actions")).to_have_count(0)
        expect(page.locator("form")).to_have_count(0)


def test_a_revoked_token_clears_the_case_and_keeps_typed_text(
        console: Console, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(page, console, console.operator)
    page.goto(f"{console.url}/admin/#/case/{console.normal}")
    expect(page.locator("#case-answers")).to_contain_text("Moussa Keita")
    page.fill("#note", "Half-written note about the call")
    with httpx.Client(base_url=console.url) as client:
        revoked = client.delete("/admin/api/v1/operators/ana",
                                headers={"Authorization": f"Bearer {console.admin}"})
        assert revoked.status_code == 204
        renewed = client.post("/admin/api/v1/operators", json={"name": "ana", "role": "operator"},
                              headers={"Authorization": f"Bearer {console.admin}"})
        token = renewed.json()["token"]
    page.click("#priority-form select")  # any call now meets the revoked token
    page.select_option("#priority", "urgent")
    page.click("#priority-form button[type=submit]")
    expect(page.locator("#sign-in-message")).to_contain_text("session ended")
    expect(page.locator("body")).not_to_contain_text("Moussa Keita")
    expect(page.locator("body")).not_to_contain_text(MIGRANT_PHONE)
    page.fill("#token", token)
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#note")).to_have_value("Half-written note about the call")
    # A token revoked while the tab was closed: the reopened tab asks to sign in.
    with httpx.Client(base_url=console.url) as client:
        client.delete("/admin/api/v1/operators/ana",
                      headers={"Authorization": f"Bearer {console.admin}"})
    page.reload()
    expect(page.locator("#sign-in-message")).to_contain_text("session ended")
    expect(page.locator("body")).not_to_contain_text("Moussa Keita")


def test_the_sms_counter_counts_as_the_helpline_does(console: Console, browser: Browser) -> None:
    page = new_page(browser)
    page.goto(f"{console.url}/admin/")
    samples = ["", "a" * 160, "a" * 161, "€" * 80, "€" * 81, "é" * 459, "a" * 460,
               "ɛ" * 70, "ɛ" * 71, "Ɲinini sɔrɔla" * 15, "Bonjour {x} [y] ~ ^ | \\"]
    measured = page.evaluate(
        "async (samples) => { const { measure } = await import('/admin/static/sms.js');"
        " return samples.map((text) => [measure(text).segments, measure(text).encoding]); }",
        samples)
    expected = [[sms.segments(text), str(sms.encoding(text))] for text in samples]
    assert measured == expected


def test_signing_out_on_purpose_leaves_no_typed_text(console: Console, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(page, console, console.operator)
    page.goto(f"{console.url}/admin/#/case/{console.normal}")
    page.fill("#note", "Private words")
    page.click("#sign-out")
    expect(page.locator("#sign-in-message")).to_have_text("You are signed out.")
    expect(page.locator("body")).not_to_contain_text("Moussa Keita")
    sign_in(page, console, console.operator)
    page.goto(f"{console.url}/admin/#/case/{console.normal}")
    expect(page.locator("#note")).to_have_value("")


def test_inactivity_signs_out(redis_server: RedisServer, tmp_path: Path, browser: Browser) -> None:
    for served in serve(redis_server, tmp_path, console_idle_minutes=2):
        page = new_page(browser)
        page.clock.install()
        sign_in(page, served, served.operator)
        page.goto(f"{served.url}/admin/#/case/{served.normal}")
        expect(page.locator("#case-answers")).to_contain_text("Moussa Keita")
        page.clock.run_for("01:30")
        expect(page.locator("#case-answers")).to_be_visible()
        page.clock.run_for("01:00")
        expect(page.locator("#sign-in-message")).to_contain_text("2 minutes without activity")
        expect(page.locator("body")).not_to_contain_text("Moussa Keita")


def test_case_actions_refuse_what_makes_no_sense(console: Console, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(page, console, console.operator)
    page.goto(f"{console.url}/admin/#/case/{console.normal}")
    # No preselected status change.
    expect(page.locator("#new-status")).to_have_value("")
    expect(page.locator("#status-form button[type=submit]")).to_be_disabled()
    page.select_option("#new-status", "contacted")
    page.click("#status-form button[type=submit]")
    expect(page.locator("#status-form .result")).to_have_text("Status changed: Contacted.")
    expect(page.locator("#new-status")).to_have_value("")
    # Assign to me; the picker holds real operators only.
    page.click("#assign-me")
    expect(page.locator("#assign-form .result")).to_have_text("Assigned to ana.")
    options = page.locator("#assignee option").all_text_contents()
    assert options == ["nobody", "ana (me)", "root", "sam"]
    # Escalation offers only higher levels, then none.
    page.fill("#escalate-reason", "threats")
    page.select_option("#escalate-level", "2")
    page.click("#escalate-form button[type=submit]")
    expect(page.locator("#escalate-form")).to_contain_text("Already at the highest level")
    # A long SMS is refused before it is sent.
    page.fill("#sms", "x" * 460)
    expect(page.locator("#sms-counter")).to_contain_text("Too long")
    expect(page.locator("#message-form button[type=submit]")).to_be_disabled()
    page.select_option("#canned", index=1)
    expect(page.locator("#sms")).to_have_value(re.compile("Nous avons bien re[çc]u"))
    # Primero is not configured here: the referral says so instead of failing later.
    expect(page.locator("#referral-form")).to_contain_text("Primero is not configured")
    expect(page.locator("#referral-form button")).to_have_count(0)
    # Operators cannot erase; the history is one line an event, reads grouped.
    expect(page.locator("#erase-form")).to_have_count(0)
    history = page.locator("#case-events li")
    texts = history.all_text_contents()
    assert any("viewed the case (" in line and "times" in line for line in texts), texts
    assert any("changed the status: New → Contacted" in line for line in texts), texts
    assert all("{" not in line for line in texts)
    page.click("a[href='#/mine']")
    expect(page.locator("#queue-title")).to_have_text("My cases")
    expect(page.locator("#cases li")).to_have_count(1)


def test_a_supervisor_erases_knowing_what_is_kept(console: Console, browser: Browser) -> None:
    page = new_page(browser, viewport=PHONE_SCREEN)
    sign_in(page, console, console.supervisor)
    page.goto(f"{console.url}/admin/#/case/{console.normal}")
    expect(page.locator("#erase-explain")).to_contain_text("Kept: the reference")
    expect(page.locator("#erase-yes")).to_be_hidden()  # nothing erased by one click
    page.click("#erase-start")
    page.click("#erase-cancel")
    expect(page.locator("#erase-form .result")).to_have_text("Nothing was erased.")
    page.click("#erase-start")
    page.click("#erase-yes")
    expect(page.locator("#erase-form")).to_have_count(0)
    expect(page.locator("#case-fields")).not_to_contain_text(MIGRANT_PHONE)
    expect(page.locator("#case-answers")).not_to_contain_text("Moussa Keita")
    no_horizontal_scroll(page)
    screenshot(page, "case-erased-phone")


def test_an_admin_manages_operators(console: Console, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(page, console, console.admin)
    page.click("a[href='#/operators']")
    page.fill("#new-name", "bea")
    page.select_option("#new-role", "supervisor")
    page.click("#add-operator button[type=submit]")
    token = page.locator("#token-once")
    expect(token).to_have_value(re.compile(r".{20,}"))
    expect(page.locator("#operators")).to_contain_text("bea")
    row = page.locator("#operators tr", has_text="bea")
    row.locator("button").click()
    expect(row.locator("button")).to_have_text("Revoke bea?")
    row.locator("button").click()
    expect(page.locator("#operators-status")).to_have_text("Operator bea revoked.")
    expect(page.locator("#operators tr", has_text="bea")).to_contain_text("revoked on")


def test_the_console_page_forbids_framing_and_foreign_scripts(console: Console) -> None:
    response = httpx.get(f"{console.url}/admin/")
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    script = httpx.get(f"{console.url}/admin/static/main.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def run_worker_once(console: Console, settings: Settings) -> None:
    """One worker cycle on the console's Redis (the outbox, then the jobs), in a thread."""

    async def cycle() -> None:
        async with referral_worker(settings) as worker:
            await worker.pump()
            await worker.run_jobs()

    in_thread(cycle)


def test_an_operator_refers_a_case_to_primero_and_sees_how_it_went(
        redis_server: RedisServer, tmp_path: Path, browser: Browser) -> None:
    with fake_primero() as fake:
        primero = {"primero_url": fake.url, "primero_user": USER,
                   "primero_password": PASSWORD, "org_name": ORG}
        served = serve(redis_server, tmp_path, **primero)
        console = next(served)
        try:
            settings = Settings(redis_url=console.redis_url, data_dir=tmp_path,
                                **primero)  # type: ignore[arg-type]
            page = new_page(browser)
            sign_in(page, console, console.operator)
            page.goto(f"{console.url}/admin/#/case/{console.normal}")
            form = page.locator("#referral-form")
            expect(form).to_contain_text("Not the phone number")
            expect(page.locator("#case-referrals")).to_have_text("No referral.")
            # No consent is chosen for the operator: without one, nothing is sent.
            assert page.locator("#referral-form input[type=radio]:checked").count() == 0
            page.click("#referral-button")
            expect(page.locator("#case-referrals")).to_have_text("No referral.")
            no_serious_violations(page, "case page with the referral form")

            fake.plan(Fail(422, message="Invalid Record JSON", detail="name"))
            page.check("#consent-recorded_by_operator")
            page.fill("#referral-note", "She prefers a woman caseworker")
            page.click("#referral-button")
            expect(form.locator(".result")).to_have_text(
                "Referral queued: it goes to Primero in a moment.")
            expect(page.locator("#case-referrals")).to_contain_text("Primero · waiting to be sent")
            expect(form).to_contain_text("Already referred (waiting to be sent)")
            expect(page.locator("#case-events")).to_contain_text(
                "referred the case to Primero (consent: the migrant agreed on a call: I record it)")

            run_worker_once(console, settings)
            page.reload()
            referrals = page.locator("#case-referrals")
            expect(referrals).to_contain_text("Primero · failed")
            expect(referrals).to_contain_text(
                "Error: Primero refused the case: Invalid Record JSON (name)")
            expect(referrals).to_contain_text("Note: She prefers a woman caseworker")
            screenshot(page, "referral-failed")

            # A failed referral can be made again; this time Primero takes it.
            page.check("#consent-given_by_migrant")
            page.click("#referral-button")
            run_worker_once(console, settings)
            page.reload()
            (case,) = fake.cases.values()
            expect(referrals.locator("li").nth(1)).to_contain_text(
                f"Primero · sent · Primero case {case['case_id_display']}")
            expect(page.locator("#case-events")).to_contain_text("sent the case to Primero")
            page.set_viewport_size(PHONE_SCREEN)
            no_horizontal_scroll(page)
            screenshot(page, "referral-sent-phone")

            french = new_page(browser, locale="fr-FR")
            sign_in(french, console, console.operator)
            french.goto(f"{console.url}/admin/#/case/{console.normal}")
            expect(french.locator("#case-referrals")).to_contain_text("Primero · échec")
            expect(french.locator("#case-referrals")).to_contain_text("Primero · envoyé")
            expect(french.locator("#referral-form")).to_contain_text(
                "Déjà orienté (envoyé) : Primero ne recevra pas le dossier deux fois.")
            no_serious_violations(french, "case page with referrals, in French")
        finally:
            served.close()
        assert len(fake.cases) == 1
