"""Accounts, login, lockout, CSRF, cookies, the session secret and ``smsgate user create``."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from smsgate import create_app
from smsgate.cli import main
from smsgate.dashboard import SESSION_SECRET
from smsgate.models import AppSecret, LoginFailure, User

from .conftest import ADMIN, PASSWORD, csrf_token, login


def test_pages_need_a_login(client, users):
    for path in ("/dashboard/", "/dashboard/regions/", "/dashboard/review", "/dashboard/messages",
                 "/dashboard/volunteers", "/dashboard/incidents", "/dashboard/export/results.csv",
                 "/dashboard/stations/6371011001012", "/dashboard/volunteers.csv"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/dashboard/login?next=")
    assert client.get("/dashboard/api/overview").status_code == 401


def test_login_and_logout(app, users):
    browser = app.test_client()
    page = browser.get("/dashboard/login")
    assert "Masuk" in page.get_data(as_text=True)  # Indonesian by default
    response = login(browser, ADMIN)
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard/"
    assert browser.get("/dashboard/").status_code == 200
    token = csrf_token(browser, "/dashboard/")
    assert browser.post("/dashboard/logout", data={"csrf_token": token}).status_code == 302
    assert browser.get("/dashboard/").status_code == 302


def test_login_redirects_back_but_never_off_site(app, users):
    browser = app.test_client()
    token = csrf_token(browser)
    data = {"email": ADMIN, "password": PASSWORD, "csrf_token": token}
    assert browser.post("/dashboard/login?next=/dashboard/review", data=data).headers["Location"] == (
        "/dashboard/review"
    )
    other = app.test_client()
    data["csrf_token"] = csrf_token(other)
    assert (
        other.post("/dashboard/login?next=//evil.example/x", data=data).headers["Location"] == "/dashboard/"
    )


def test_wrong_password_is_refused_and_recorded(app, database, users):
    browser = app.test_client()
    response = login(browser, ADMIN, "salah-salah")
    assert response.status_code == 401
    assert "Email atau kata sandi salah" in response.get_data(as_text=True)
    assert login(browser, "nobody@example.org").status_code == 401
    with database.read() as session:
        failures = session.scalars(select(LoginFailure).order_by(LoginFailure.id)).all()
    assert [(f.email, f.ip) for f in failures] == [(ADMIN, "127.0.0.1"), ("nobody@example.org", "127.0.0.1")]


def test_csrf_is_enforced_on_every_form(app, admin, users):
    browser = app.test_client()
    assert browser.post("/dashboard/login", data={"email": ADMIN, "password": PASSWORD}).status_code == 400
    assert admin.post("/dashboard/review/6371011001012/confirm", data={"report_id": "1"}).status_code == 400
    assert admin.post("/dashboard/lang", data={"lang": "en"}).status_code == 400
    assert admin.post("/dashboard/logout").status_code == 400
    assert admin.get("/dashboard/").status_code == 200  # still logged in


def test_webhooks_are_not_subject_to_csrf(sms, users):
    assert sms("+6281100000001", "TPS 012 01=100 02=80 03=20").startswith("OK")


def test_session_cookie_is_httponly_lax_and_secure_on_https(app, users):
    browser = app.test_client()
    response = login(browser, ADMIN)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_session_secret_is_shared_through_the_database(settings, database):
    first = create_app(settings, database=database)
    second = create_app(settings, database=database)
    assert first.secret_key == second.secret_key
    with database.read() as session:
        assert session.get(AppSecret, SESSION_SECRET).value == first.secret_key


def test_session_secret_from_the_environment(settings, database):
    from dataclasses import replace

    app = create_app(replace(settings, secret_key="from-env"), database=database)
    assert app.secret_key == "from-env"


def test_language_switch(admin):
    assert "Ringkasan" in admin.get("/dashboard/").get_data(as_text=True)
    token = csrf_token(admin, "/dashboard/")
    response = admin.post(
        "/dashboard/lang", data={"lang": "en", "next": "/dashboard/review", "csrf_token": token}
    )
    assert response.headers["Location"] == "/dashboard/review"
    page = admin.get("/dashboard/").get_data(as_text=True)
    assert "Overview" in page and "Ringkasan" not in page


def cli(database_url: str, args: list[str], password: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, args, input=password, env={"SMSGATE_DATABASE_URL": database_url})


def test_cli_user_create(database_url, database, world):
    result = cli(
        database_url,
        ["user", "create", "--email", "Rina@Example.org", "--role", "coordinator", "--region", "6371",
              "--password-stdin"],
        "kata-sandi-rina\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rina@example.org" in result.output
    with database.read() as session:
        user = session.scalars(select(User).where(User.email == "rina@example.org")).one()
        assert user.region_code == "63.71" and user.role == "coordinator"
        assert user.password_hash != "kata-sandi-rina" and "kata-sandi-rina" not in user.password_hash
    prompted = cli(
        database_url,
        ["user", "create", "--email", "boss@example.org", "--role", "admin"],
        "panjang-sekali\npanjang-sekali\n",
    )
    assert prompted.exit_code == 0, prompted.output
    assert "scope Indonesia" in prompted.output


def test_cli_user_create_refuses_bad_input(database_url, world):
    def create(*args: str, password: str = "cukup-panjang\n"):  # type: ignore[no-untyped-def]
        return cli(database_url, ["user", "create", *args, "--password-stdin"], password)

    assert create("--email", "a@example.org", "--role", "coordinator").exit_code != 0  # no region
    assert create("--email", "a@example.org", "--role", "coordinator", "--region", "99").exit_code != 0
    assert create("--email", "a@example.org", "--role", "admin", password="short\n").exit_code != 0
    assert create("--email", "not-an-email", "--role", "admin").exit_code != 0
    assert create("--email", "a@example.org", "--role", "admin").exit_code == 0
    duplicate = create("--email", "A@example.org", "--role", "admin")
    assert duplicate.exit_code != 0 and "exists" in duplicate.output


def test_demo_step_creates_an_admin_and_prints_where_to_log_in(database, world, tmp_path):
    from smsgate import demo
    from smsgate.dashboard.demo_steps import DEMO_EMAIL, DEMO_PASSWORD, dashboard

    lines: list[str] = []
    state = demo.Demo(options=demo.Options(folder=tmp_path), echo=lines.append, database=database)
    state.url = "http://127.0.0.1:8123"
    dashboard(state)
    assert any("http://127.0.0.1:8123/dashboard/" in line and DEMO_PASSWORD in line for line in lines)
    with database.read() as session:
        assert session.scalars(select(User).where(User.email == DEMO_EMAIL)).one().role == "admin"
    assert "dashboard" in [step.name for step in demo.STEPS]
