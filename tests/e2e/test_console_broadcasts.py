"""The console's broadcasts page in Debian's headless Chromium, against the real app and
Redis: compose with a segment counter per language and the recipients' count, four eyes,
cancel, progress; French and English, by keyboard, at phone width, 0 axe violations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from redis.asyncio import Redis

from bot import privacy
from bot.settings import Settings
from bot.store import broadcasts as store
from bot.store.connection import close_client
from tests.e2e.console_support import (
    PHONE_SCREEN,
    Console,
    in_thread,
    new_page,
    no_horizontal_scroll,
    no_violations,
    screenshot,
    serve,
    sign_in,
)
from tests.integration.broadcast_support import seed_subscribers

PLAN = [("NE", "fr"), ("NE", "bm"), ("NE", "en"), ("ML", "bm"), ("LY", "fr")]
# 440 characters with ɛ and ɔ: 7 segments in UCS-2, 3 once written è and ò (as sent).
BAMBARA = ("Farati bɛ sira kan, i kɔlɔsi. " * 15)[:440].strip()


@pytest.fixture
def console(redis_server: Any, tmp_path: Path) -> Iterator[Console]:
    async def subscribe(redis: Redis) -> None:
        await seed_subscribers(redis, privacy.pii_key(Settings()), PLAN)

    yield from serve(redis_server, tmp_path, also_seed=subscribe, quiet_hours="")


def open_broadcasts(page: Page, console: Console, token: str) -> None:
    sign_in(page, console, token)
    page.click("nav a[href='#/broadcasts']")
    expect(page.locator("h1")).to_be_visible()


def test_a_supervisor_writes_by_keyboard_and_another_approves(console: Console,
                                                              browser: Browser) -> None:
    page = new_page(browser)
    open_broadcasts(page, console, console.supervisor)
    expect(page.locator("h1")).to_have_text("Alerts to subscribers")
    expect(page.locator("#b-recipients")).to_have_text("Recipients today: 5")
    no_violations(page, "broadcasts (en, laptop)")
    # By keyboard only: type, tab on, tick with the space bar, send with Enter.
    page.focus("#b-text-fr")
    page.keyboard.type("Canicule à Agadez : buvez de l'eau.")
    expect(page.locator("#b-text-fr-count")).to_have_text(re.compile(r"· 1 SMS \(GSM-7\)"))
    page.keyboard.press("Tab")
    page.keyboard.type("Heat wave in Agadez: drink water.")
    page.keyboard.press("Tab")
    page.keyboard.insert_text(BAMBARA)
    expect(page.locator("#b-text-bm-count")).to_have_text(re.compile(r"^439 .*· 3 SMS \(GSM-7\)$"))
    page.focus("#b-countries-NE")
    page.keyboard.press("Space")
    expect(page.locator("#b-recipients")).to_have_text("Recipients today: 3")
    page.focus("#compose button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("#compose .result")).to_have_text(re.compile(r"Alert no\. 1 saved"))
    card = page.locator("#broadcasts li[data-id='1']")
    expect(card).to_contain_text("To approve")
    expect(card).to_contain_text("You wrote it")
    expect(card.locator("button.approve")).to_have_count(0)
    saved = in_thread(lambda: _segments(console, "1"))
    assert saved == {"fr": 1, "en": 1, "bm": 3}  # what the page counted, the API counted
    screenshot(page, "broadcasts-written")

    admin = new_page(browser, locale="fr-FR", viewport=PHONE_SCREEN)
    open_broadcasts(admin, console, console.admin)
    expect(admin.locator("h1")).to_have_text("Alertes aux abonnés")
    other = admin.locator("#broadcasts li[data-id='1']")
    expect(other).to_contain_text("À approuver")
    no_horizontal_scroll(admin)
    no_violations(admin, "broadcasts (fr, phone)")
    other.locator("button.approve").focus()
    admin.keyboard.press("Enter")
    expect(other).to_contain_text("En cours d'envoi")
    expect(other.locator(".result")).to_have_text("Alerte n° 1 approuvée.")
    expect(other.locator("progress")).to_have_attribute("max", "3")
    expect(other.locator("[data-count=queued]")).to_have_text("en attente : 3")
    no_violations(admin, "broadcasts (fr, phone, approved)")
    screenshot(admin, "broadcasts-approved-phone")
    # Cancel asks once more, then stops it.
    other.locator("button.cancel").click()
    expect(other.locator("button.cancel")).to_have_text("Confirmer l'annulation")
    other.locator("button.cancel").click()
    expect(other).to_contain_text("Annulée")
    expect(other.locator(".result")).to_have_text(re.compile("rien de plus ne part"))


async def _segments(console: Console, broadcast_id: str) -> dict[str, int]:
    redis = Redis.from_url(console.redis_url)
    found = await store.read(redis, broadcast_id)
    await close_client(redis)
    assert found is not None
    return dict(found.segments)


def test_a_refusal_names_the_language_where_the_supervisor_is_looking(
        console: Console, browser: Browser) -> None:
    page = new_page(browser, locale="fr-FR")
    open_broadcasts(page, console, console.supervisor)
    page.fill("#b-text-fr", "Inondation à Ségou : restez en hauteur.")
    page.fill("#b-text-en", "Flood in Ségou: stay on high ground.")
    page.click("#compose button[type=submit]")
    result = page.locator("#compose .result")
    expect(result).to_have_text(re.compile(r"^Texte en bambara : .*missing"))
    expect(result).to_have_class(re.compile("error"))
    expect(page.locator("#b-text-bm")).to_be_focused()
    page.check("#b-languages-fr")
    page.check("#b-languages-en")
    expect(page.locator("#b-text-bm")).to_have_attribute("title", re.compile("non visée"))
    page.click("#compose button[type=submit]")
    expect(result).to_have_text(re.compile(r"Alerte n° 1 enregistrée"))


def test_an_operator_follows_the_progress_but_writes_nothing(console: Console,
                                                             browser: Browser) -> None:
    supervisor = new_page(browser)
    open_broadcasts(supervisor, console, console.supervisor)
    for language, words in (("fr", "Nouveau bureau d'aide à Gao."), ("en", "New help desk in Gao."),
                            ("bm", "Dɛmɛ biro kura Gao.")):
        supervisor.fill(f"#b-text-{language}", words)
    supervisor.click("#compose button[type=submit]")
    expect(supervisor.locator("#compose .result")).to_have_text(re.compile("saved"))
    page = new_page(browser)
    open_broadcasts(page, console, console.operator)
    expect(page.locator("#compose")).to_have_count(0)
    card = page.locator("#broadcasts li[data-id='1']")
    expect(card).to_contain_text("New help desk in Gao.")
    expect(card.locator("button")).to_have_count(0)
    no_violations(page, "broadcasts (operator)")
