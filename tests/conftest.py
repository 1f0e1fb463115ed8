"""Shared fixtures: a real database (SQLite by default, PostgreSQL when
``SMSGATE_TEST_DATABASE_URL`` names one), the app, and signed webhook requests.

The schema is built once per test session through the real migrations; each test then
starts from empty tables (a copied SQLite file, or TRUNCATE on PostgreSQL), so tests are
isolated and a run never sees another run's data (each PostgreSQL run gets its own database).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from smsgate.config import Settings
from smsgate.db import Database
from smsgate.models import Base
from smsgate.schema import upgrade

from .support import World, build_world

PG_ENV = "SMSGATE_TEST_DATABASE_URL"


def _postgres_url() -> str | None:
    url = os.environ.get(PG_ENV, "").strip()
    return url if url.startswith("postgresql") else None


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this test session: a SQLite file or a PostgreSQL database."""
    pg = _postgres_url()
    if pg is None:
        path = tmp_path_factory.mktemp("db") / "template.db"
        database = Database.from_url(f"sqlite:///{path}")
        upgrade(database.engine)
        database.dispose()
        yield str(path)
        return
    base = make_url(pg)
    name = f"smsgate_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    database = Database.from_url(url)
    upgrade(database.engine)
    database.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> Iterator[str]:
    """A clean database for one test (URL form, for code that builds its own engine)."""
    if database_template.startswith("postgresql"):
        engine = create_engine(database_template)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        yield database_template
        return
    path = tmp_path / "smsgate.db"
    shutil.copyfile(database_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database.from_url(database_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        public_url="https://smsgate.example.org",
        twilio_auth_token="test-auth-token",
        twilio_account_sid="AC00000000000000000000000000000000",
        twilio_from="+15005550006",
        api_token="test-api-token",
        # Polls close tomorrow: wall-clock reports in tests are never flagged ``late``
        # (tests/verification builds its own settings to test that flag).
        polls_close=datetime.now(UTC) + timedelta(days=1),
        # One test phone sends far more than a person would; the flood tests turn it back on.
    ).without_flood_control()


@pytest.fixture
def app(settings: Settings, database: Database):  # type: ignore[no-untyped-def]
    from smsgate import create_app

    app = create_app(settings, test_config={"TESTING": True}, database=database)
    yield app


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def runner(app):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


@pytest.fixture
def world(database: Database) -> World:
    """A small real slice of Kalimantan Selatan with stations, volunteers and coordinators."""
    with database.begin() as session:
        return build_world(session)


@pytest.fixture
def sms(client, world):  # type: ignore[no-untyped-def]
    """Send a signed Twilio webhook: ``sms(phone, body)`` -> the reply text (or None)."""
    from .support import TwilioSender

    return TwilioSender(client)


def pytest_report_header(config: pytest.Config) -> str:
    return f"smsgate database: {'postgresql' if _postgres_url() else 'sqlite'}"
