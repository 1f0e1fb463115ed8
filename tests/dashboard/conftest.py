"""Dashboard fixtures: users of each kind and a logged-in test client (CSRF on, as in production)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from smsgate.dashboard.accounts import create_user
from smsgate.models import utcnow

PASSWORD = "rahasia-sekali"
ADMIN = "admin@example.org"
KOTA = "kota@example.org"  # coordinator for Kota Banjarmasin (63.71)
KALTIM = "kaltim@example.org"  # coordinator for Kalimantan Timur (64)
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/dashboard/login") -> str:  # type: ignore[no-untyped-def]
    page = client.get(path)
    match = _TOKEN.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = csrf_token(client)
    return client.post("/dashboard/login", data={"email": email, "password": password, "csrf_token": token})


@dataclass(frozen=True)
class Users:
    admin: int
    kota: int
    kaltim: int


@pytest.fixture
def users(database, world) -> Users:  # type: ignore[no-untyped-def]
    with database.begin() as session:
        ids = [
            create_user(session, email=e, password=PASSWORD, role=r, region=c, now=utcnow()).id
            for e, r, c in (
                (ADMIN, "admin", None),
                (KOTA, "coordinator", "63.71"),
                (KALTIM, "coordinator", "64"),
            )
        ]
    return Users(*ids)


@pytest.fixture
def admin(app, users):  # type: ignore[no-untyped-def]
    """A second test client on the same app, logged in as the admin (``client`` stays for webhooks)."""
    browser = app.test_client()
    assert login(browser, ADMIN).status_code == 302
    return browser


@pytest.fixture
def kota(app, users):  # type: ignore[no-untyped-def]
    browser = app.test_client()
    assert login(browser, KOTA).status_code == 302
    return browser
