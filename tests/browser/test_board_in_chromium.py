"""The board in a real browser: Debian's Chromium, headless, driven by Playwright, against a real
`escalera up --demo` on a free port, as a support lead uses it.

One desk serves the whole module (starting it takes seconds); each test reads it as it is, and
posts the tickets it needs. Screenshots of every page are saved in `ARTIFACTS` (gitignored).
Nothing leaves 127.0.0.1: Chromium runs with its background networking off.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.integration.test_up import Terminal, environment, escalera_up

CHROMIUM = Path(os.environ.get("ESCALERA_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent / "artifacts"
TOKEN = "board-lead-token-0123456789"
BOARD_LINE = re.compile(r"open (http://127\.0\.0\.1:\d+)/\n")
UP_WITHIN_S = 60
# Offline and quiet: no component updates, no sync, no lookups of Google's hosts.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Desk:
    url: str
    folder: Path
    terminal: Terminal


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    folder = tmp_path_factory.mktemp("desk")
    env = environment(ESCALERA_API_TOKENS=json.dumps([TOKEN]))
    with escalera_up(folder, env) as terminal:
        terminal.wait_for(BOARD_LINE, UP_WITHIN_S, folder / ".escalera" / "up.log")
        found = BOARD_LINE.search(terminal.text())
        assert found is not None
        yield Desk(found.group(1), folder, terminal)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need it "
            "(apt-get install chromium; `bash .ci/run` installs it, or set ESCALERA_CHROMIUM)",
            pytrace=False,
        )
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser, desk: Desk) -> Iterator[Page]:
    """A fresh browser window at 1280 px, signed in with the demo's token."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    window = context.new_page()
    window.goto(desk.url + "/")
    expect(window).to_have_url(re.compile(r"/sign-in\?next=%2F$"))
    window.fill("#token", TOKEN)
    window.press("#token", "Enter")  # the keyboard signs in too
    expect(window.locator("#board")).to_be_visible()
    yield window
    context.close()


def shot(window: Page, name: str) -> None:
    window.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def post_event(desk: Desk, **fields: object) -> None:
    request = urllib.request.Request(
        f"{desk.url}/v1/events",
        data=json.dumps(fields).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202


def test_the_demo_desk_is_on_the_board_soonest_checkpoint_first(page: Page) -> None:
    rows = page.locator("#rows tr[data-ticket]")
    expect(rows.first).to_be_visible(timeout=20_000)
    expect(page.locator('#rows tr[data-ticket="api/MX-1001"]')).to_be_visible(timeout=20_000)
    dues = [d for d in rows.evaluate_all("rs => rs.map(r => r.dataset.due)") if d]
    assert len(dues) >= 3
    instants = [datetime.fromisoformat(d) for d in dues]
    assert instants == sorted(instants), dues
    subject = page.locator('#rows tr[data-ticket="api/MX-1001"] .subject')
    expect(subject).to_have_text("Punto de venta caído en sucursal Centro")
    shot(page, "board")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: rows become cards
    shot(page, "board-phone")


def test_a_countdown_crosses_a_warning_and_its_badge_changes_without_a_reload(
    page: Page,
) -> None:
    """The soonest checkpoint ahead that is a warning of a running ticket, or a breach: its
    badge turns warned (or breached) as its countdown reaches zero, in the same page."""
    page.evaluate("window.sameDocument = true")
    crossing = page.locator(
        '#rows tr.state-running[data-kind="warning"], #rows tr[data-kind="breach"]'
    ).first
    expect(crossing).to_be_attached(timeout=20_000)
    ticket, kind = crossing.get_attribute("data-ticket"), crossing.get_attribute("data-kind")
    row = page.locator(f'#rows tr[data-ticket="{ticket}"]')
    before = row.locator(".countdown").inner_text()
    expect(row.locator(".countdown")).not_to_have_text(before, timeout=3_000)  # it ticks
    expected = "warned" if kind == "warning" else "breached"
    expect(row.locator(".badge")).to_have_class(re.compile(rf"\b{expected}\b"), timeout=150_000)
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
    shot(page, "board-after-warning")


def test_a_ticket_s_timeline_and_acknowledging_its_page(page: Page, desk: Desk) -> None:
    """A P1 ticket created 31 minutes ago breaches at once and is paged to on-call; the page
    is acknowledged from the ticket's page, under the signed-in key's name."""
    created = datetime.now(UTC) - timedelta(minutes=31)
    post_event(
        desk,
        event_id="browser-1",
        ticket_id="WEB-1",
        type="created",
        priority="P1",
        customer="farmacias-del-norte",
        subject="Caja registradora bloqueada",
        occurred_at=created.isoformat(),
    )
    button = page.get_by_role("button", name=re.compile("Acknowledge|Confirmar recepción"))
    for _ in range(30):  # the breach fires and is paged within seconds
        page.goto(desk.url + "/tickets/api/WEB-1")
        if button.count():
            break
        page.wait_for_timeout(1_000)
    expect(page.locator("h1")).to_contain_text("Caja registradora bloqueada")
    expect(page.locator("table.timeline")).to_contain_text("first_response:breach")
    expect(page.locator("svg line.mark.breach.fired").first).to_be_attached()
    shot(page, "ticket")
    button.first.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/tickets/api/WEB-1\?acked=1$"))
    expect(page.locator(".done")).to_be_visible()
    expect(page.locator("tr.entry-acknowledgement").first).to_contain_text("api-token-1")
    shot(page, "ticket-acknowledged")


def test_the_compliance_csv_is_what_the_command_prints(page: Page, desk: Desk) -> None:
    page.goto(desk.url + "/compliance")
    expect(page.locator("table.compliance")).to_be_visible()
    shot(page, "compliance")
    link = page.locator("#csv").get_attribute("href")
    assert link is not None
    query = dict(re.findall(r"(\w+)=([^&]+)", link.replace("&amp;", "&")))
    with page.expect_download() as download:
        page.click("#csv")
    downloaded = Path(download.value.path()).read_text()
    last_day = datetime.fromisoformat(query["to"]) + timedelta(days=1)  # the page includes it
    command = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker.cli",
            "report",
            "compliance",
            "--format",
            "csv",
            "--from",
            query["from"],
            "--to",
            last_day.date().isoformat(),
            "--at",
            urllib.parse.unquote(query["at"]),
        ],
        cwd=desk.folder,
        env=environment(
            DATABASE_URL=f"sqlite:///{desk.folder / '.escalera' / 'demo' / 'escalera.db'}"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert command.returncode == 0, command.stderr
    assert downloaded == command.stdout
    rows = list(csv.reader(io.StringIO(downloaded)))
    assert rows[0][:3] == ["by", "group", "metric"]
    assert len(rows) > 1


def test_operations_shows_the_timer_index_and_the_policies(page: Page, desk: Desk) -> None:
    page.goto(desk.url + "/operations")
    expect(page.locator("dl.figures")).to_be_visible()
    expect(page.locator("main")).to_contain_text("soporte-completo")
    shot(page, "operations")
