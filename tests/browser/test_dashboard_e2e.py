"""End to end in headless Chromium: the real app on a localhost port, signed webhooks arriving,
the dashboard following them. Skips only when /usr/bin/chromium is missing and
SMSGATE_REQUIRE_BROWSER is unset (CI sets it, so a missing browser fails there)."""

from __future__ import annotations

import csv
import io
import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from werkzeug.serving import make_server

from smsgate import create_app
from smsgate.cli import main
from smsgate.dashboard.accounts import create_user
from smsgate.importers import upsert_regions, upsert_stations
from smsgate.models import SampleStation, utcnow
from smsgate.quickcount.card_job import CardJob

from ..quickcount.synthetic import build_frame, simulate
from ..support import COORD_NATIONAL, VOLUNTEER_A, VOLUNTEER_B, VOLUNTEER_EN, WITH_PIN, TwilioSender

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
EMAIL, PASSWORD = "koordinator@example.org", "rahasia-sekali"

if not Path(CHROMIUM).exists() and not os.environ.get("SMSGATE_REQUIRE_BROWSER"):
    pytest.skip(
        f"{CHROMIUM} is missing (set SMSGATE_REQUIRE_BROWSER=1 to fail instead)", allow_module_level=True
    )

sync_api = (
    pytest.importorskip("playwright.sync_api") if not os.environ.get("SMSGATE_REQUIRE_BROWSER") else None
)
if sync_api is None:
    import playwright.sync_api as sync_api


@pytest.fixture
def live_url(settings, database, world) -> Iterator[str]:
    """The real app served on a free localhost port, on the test database. Its public URL is
    plain http, so the session cookie is not Secure (the browser talks http to localhost)."""
    with database.begin() as session:
        create_user(session, email=EMAIL, password=PASSWORD, role="admin", region=None, now=utcnow())
    app = create_app(replace(settings, public_url="http://127.0.0.1"), database=database)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


#: Reports every Content-Security-Policy violation to the test (an init script is not itself
#: subject to the page's policy, and the binding outlives navigations).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.cspViolation(
    e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile + ":" + e.lineNumber
  );
});
"""


@pytest.fixture
def csp_violations() -> list[str]:
    return []


@pytest.fixture
def page(live_url, csp_violations):  # type: ignore[no-untyped-def]
    """A Chromium page; the test fails afterwards if the dashboard broke its own CSP anywhere."""
    violations = csp_violations
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        context.expose_binding("cspViolation", lambda _source, text: violations.append(text))
        context.add_init_script(REPORT_VIOLATIONS)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                violations.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        page.set_default_timeout(15000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
    assert violations == [], violations


def test_election_night_in_the_browser(page, live_url, client):
    webhook = TwilioSender(client)  # signed webhooks through the app's test client, same database
    webhook(VOLUNTEER_EN, "TPS 001 01=50 02=60 03=10")

    page.goto(f"{live_url}/dashboard/")
    assert "/dashboard/login" in page.url
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(f"{live_url}/dashboard/")
    reported = page.locator('[data-field="stations.reported"]')
    assert reported.inner_text() == "1"

    # New reports arrive; the page refreshes itself (no reload) from the JSON endpoint.
    webhook(VOLUNTEER_A, "TPS 012 01=100 02=80 03=20")
    webhook(VOLUNTEER_B, "TPS 012 01=90 02=85 03=20")
    sync_api.expect(reported).to_have_text("2", timeout=20000)
    sync_api.expect(page.locator('[data-field="stations.disputed"]')).to_have_text("1")
    sync_api.expect(page.locator("#vote-chart text.value").first).to_contain_text(
        "140"
    )  # 50 + 90 (B, the latest)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

    # Drill down: regions -> province -> kota -> kecamatan -> desa -> station.
    page.click("text=Wilayah")
    for name in ("Kalimantan Selatan", "Kota Banjarmasin", "Banjarmasin Selatan", "Mantuil", "TPS 012"):
        page.click(f"#children a:text-is('{name}')")
    assert page.url.endswith("/dashboard/stations/6371011001012")
    sync_api.expect(page.locator("#station-status")).to_have_text("Sengketa")
    page.screenshot(path=str(ARTIFACTS / "station.png"), full_page=True)

    # Review queue: confirm B's report with one click (readings side by side, the counted one,
    # B's as the latest of a 1-1 tie, first).
    page.click("nav >> text=Tinjauan")
    page.locator(".review-item button", has_text="Konfirmasi laporan ini").first.click()
    sync_api.expect(page.locator(".note")).to_contain_text("dikonfirmasi")
    page.goto(f"{live_url}/dashboard/stations/6371011001012")
    sync_api.expect(page.locator("#station-status")).to_have_text("Terverifikasi")
    sync_api.expect(page.locator("#decisions")).to_contain_text(EMAIL)

    # Sorting the table by a column reorders the rows.
    page.goto(f"{live_url}/dashboard/regions/63.71.01.1001")
    page.click("th[data-sort=reported]")
    page.click("th[data-sort=reported]")
    assert page.locator("#children tbody tr").first.locator("td").first.inner_text() == "TPS 012"

    # Export the kecamatan's station results as CSV.
    page.goto(f"{live_url}/dashboard/regions/63.71.01")
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    mantuil = next(r for r in rows if r["station_id"] == "6371011001012")
    assert (mantuil["status"], mantuil["votes_01"], mantuil["votes_02"]) == ("verified", "90", "85")

    # English switch.
    page.click("#switch-language")
    sync_api.expect(page.locator("h1")).to_contain_text("Banjarmasin Selatan")
    sync_api.expect(page.locator("nav").first).to_contain_text("Overview")


def test_the_dashboard_keeps_its_own_content_security_policy(page, live_url, csp_violations):
    """The policy is sent and is strict; the ``page`` fixture fails on any violation logged while
    the pages render, refresh and draw their charts (an inline style or script would be one)."""
    response = page.goto(f"{live_url}/dashboard/login")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(f"{live_url}/dashboard/")
    sync_api.expect(page.locator("#vote-chart")).to_be_visible()
    page.wait_for_timeout(6000)  # one refresh from /dashboard/api/overview, charts redrawn
    for path in ("regions/63.71", "review", "messages", "volunteers", "incidents", "password"):
        page.goto(f"{live_url}/dashboard/{path}")
        sync_api.expect(page.locator("h1").first).to_be_visible()
    assert csp_violations == []
    # The check itself can fail: an inline style attribute is refused and reported.
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\\'color: red\\'>x</p>')")
    page.wait_for_timeout(500)
    assert any("style-src" in violation for violation in csp_violations), csp_violations
    csp_violations.clear()


def test_quick_count_card_follows_the_night(page, live_url, client, database, database_url, settings):
    """The quick-count card refreshes itself in the browser: the call, the warnings in words,
    the lead and the chart of the estimate through the night."""
    frame = build_frame(11, kabupaten=6, kecamatan=3, desa=4, stations=(3, 8), province="62")
    with database.begin() as session:
        upsert_regions(session, frame.regions())
        upsert_stations(session, frame.station_rows())
    args = ["sample", "draw", "--size", "40", "--seed", "7", "--region", "62"]
    drawn = CliRunner().invoke(main, args, env={"SMSGATE_DATABASE_URL": database_url})
    assert drawn.exit_code == 0, drawn.output
    with database.read() as session:
        stations = sorted(session.scalars(select(SampleStation.station_id)))
    election = simulate(frame, np.random.default_rng(3))
    votes = dict(zip(frame.station_ids, election.votes.tolist(), strict=True))
    webhook = TwilioSender(client)

    def send(station: str) -> None:
        v = votes[station]
        report = f"TPS {station} 01={v[0]} 02={v[1]} 03={v[2]}{WITH_PIN}"  # coordinators need the PIN
        assert webhook(COORD_NATIONAL, report).startswith("OK")

    for station in stations[:4]:
        send(station)
    page.goto(f"{live_url}/dashboard/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.goto(f"{live_url}/dashboard/?region=62")
    card = page.locator("#quick-count")
    sync_api.expect(card.locator(".qc-warnings")).to_contain_text("Indikatif")
    sync_api.expect(card.locator(".qc-call")).to_have_text("Belum bisa dipastikan")
    # As in a deployment, `smsgate worker`'s card job recomputes the card the page has viewed
    # (here at every change: interval 0), beside the server.
    stop = threading.Event()
    job = CardJob(replace(settings, quickcount_card_seconds=0.0))

    def worker() -> None:
        while not stop.is_set():
            job.run_once(database)
            stop.wait(0.2)

    beside = threading.Thread(target=worker, daemon=True)
    beside.start()
    try:
        for station in stations[4:]:
            send(station)
        # no reload: the page's script redraws the card from /dashboard/api/overview
        sync_api.expect(card.locator(".qc-warnings")).to_have_count(0, timeout=20000)
    finally:
        stop.set()
        beside.join(timeout=30)
    sync_api.expect(card.locator(".qc-lead")).to_contain_text("Selisih")
    assert card.locator("polyline").count() == 3
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "quick-count.png"), full_page=True)


def test_a_laptop_screen_shows_everything(page, live_url, client):
    """At 1366x768, the commonest laptop screen: nothing cut, nothing said twice, whole numbers."""
    page.set_viewport_size({"width": 1366, "height": 768})
    webhook = TwilioSender(client)
    webhook(VOLUNTEER_A, "TPS 012 01=100 02=80 03=20")
    webhook(VOLUNTEER_B, "TPS 012 01=90 02=85 03=20")
    webhook(VOLUNTEER_EN, "TPS 001 01=50 02=60 03=10")
    page.goto(f"{live_url}/dashboard/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(f"{live_url}/dashboard/")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # The country's overview names it once (its heading), not again as a one-item breadcrumb.
    sync_api.expect(page.locator("h1")).to_contain_text("Indonesia")
    assert page.locator(".crumbs").count() == 0
    assert page.locator("main").inner_text().count("Indonesia") == 1
    # Reports per minute in whole numbers, as rendered and after the page refreshed itself.
    # (3 reports in one minute, or 2 and 1 when they straddle a minute's end: never "3.0")
    label = page.locator("#activity text", has_text="max ")
    assert label.text_content() in ("max 3/min", "max 2/min"), label.text_content()
    sync_api.expect(page.locator("#overview[data-refreshed]")).to_have_count(1, timeout=20000)
    refreshed = page.locator("#activity text", has_text="max ").text_content()
    assert refreshed in ("max 3/min", "max 2/min"), refreshed
    page.screenshot(path=str(ARTIFACTS / "laptop-overview.png"), full_page=True)

    # A kabupaten/kota's table: every column, the last one included, inside its card.
    page.goto(f"{live_url}/dashboard/regions/63.71")
    box = page.evaluate(
        """() => {
        const table = document.querySelector('#children'), card = table.closest('.card');
        const last = table.querySelector('thead th:last-child').getBoundingClientRect();
        const inner = card.getBoundingClientRect();
        return {scroll: card.scrollWidth, client: card.clientWidth, last: last.right, card: inner.right,
                page: document.documentElement.clientWidth};
    }"""
    )
    assert box["scroll"] <= box["client"] and box["last"] <= box["card"] <= box["page"], box
    sync_api.expect(page.locator("#children thead th").last).to_contain_text("03 %")
    page.screenshot(path=str(ARTIFACTS / "laptop-regions.png"), full_page=True)

    # A review card names the station as people know it: TPS number and desa, then its id.
    page.goto(f"{live_url}/dashboard/review")
    card = page.locator(".review-item").first
    sync_api.expect(card.locator(".station-name")).to_have_text("TPS 012 Mantuil")
    sync_api.expect(card.locator(".station-id")).to_have_text("6371011001012")
    page.screenshot(path=str(ARTIFACTS / "laptop-review.png"), full_page=True)


def test_an_overridden_station_is_shown_and_rejected_in_the_browser(page, live_url, client):
    """A coordinator's SMS against two agreeing volunteers waits on the review page, naming who
    changed which numbers; rejecting it in the browser restores the volunteers' numbers (and the
    ``page`` fixture fails on any Content-Security-Policy violation on the way)."""
    sms = TwilioSender(client)
    for phone in (VOLUNTEER_A, VOLUNTEER_B):
        assert sms(phone, "TPS 012 01=100 02=50 03=25").startswith("OK")
    assert sms(COORD_NATIONAL, f"TPS 6371011001012 01=1 02=250 03=1{WITH_PIN}").startswith("OK DITINJAU")
    page.goto(f"{live_url}/dashboard/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(f"{live_url}/dashboard/")
    page.goto(f"{live_url}/dashboard/review")
    card = page.locator('section.review-item[data-station="6371011001012"]')
    sync_api.expect(card.locator(".status.overridden")).to_have_text("Diubah koordinator")
    override = card.locator(".override")
    sync_api.expect(override).to_contain_text("Koordinator Gita +6281200000002 mengubah")
    sync_api.expect(override.locator(".votes-from")).to_have_text("01=100 02=50 03=25")
    sync_api.expect(override.locator(".votes-to")).to_have_text("01=1 02=250 03=1")
    override.locator("button[data-reject]").click()
    page.wait_for_url(f"{live_url}/dashboard/review")
    sync_api.expect(page.locator("body")).to_contain_text("kesepakatan relawan dihitung lagi")
    sync_api.expect(page.locator('section.review-item[data-station="6371011001012"]')).to_have_count(0)
    page.goto(f"{live_url}/dashboard/stations/6371011001012")
    sync_api.expect(page.locator("#station-status")).to_have_text("Terverifikasi")
    sync_api.expect(page.locator("#station-votes")).to_contain_text("100")
