"""``/healthz`` is a readiness check (reachable, writable, schema at head; 503 with the reason,
within 2 s) and ``/livez`` says only that the process answers."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from smsgate import create_app
from smsgate.config import Settings
from smsgate.db import Database


def _get(settings: Settings, path: str = "/healthz"):  # type: ignore[no-untyped-def]
    # A fixed session key: the dashboard would otherwise read (or write) its key in the database.
    app = create_app(settings, test_config={"TESTING": True, "SECRET_KEY": "test"})
    try:
        started = time.monotonic()
        response = app.test_client().get(path)
        return response, time.monotonic() - started
    finally:
        app.extensions["smsgate.database"].dispose()


def test_healthz_ok_on_a_migrated_writable_database(settings: Settings) -> None:
    response, _ = _get(settings)
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_livez_does_not_touch_the_database(settings: Settings, tmp_path: Path) -> None:
    broken = replace(settings, database_url=f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}")
    response, _ = _get(broken, "/livez")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert _get(broken)[0].status_code == 503


def test_healthz_503_before_init(settings: Settings, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    Database.from_url(f"sqlite:///{empty}").engine.connect().close()  # exists, no schema
    response, _ = _get(replace(settings, database_url=f"sqlite:///{empty}"))
    assert response.status_code == 503
    assert "run smsgate init" in response.get_json()["reason"]


def test_healthz_503_when_the_database_refuses_writes(settings: Settings, database_url: str) -> None:
    """PostgreSQL with ``default_transaction_read_only`` (as on a standby), or a read-only
    SQLite file: ``SELECT 1`` works, the write probe does not."""
    if database_url.startswith("postgresql"):
        url = make_url(database_url).update_query_dict({"options": "-c default_transaction_read_only=on"})
        read_only = url.render_as_string(hide_password=False)
    else:
        path = make_url(database_url).database
        read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    response, _ = _get(replace(settings, database_url=read_only))
    assert response.status_code == 503, response.get_json()
    assert "read-only" in response.get_json()["reason"]


def test_healthz_503_when_the_sqlite_file_was_deleted(settings: Settings, tmp_path: Path) -> None:
    from smsgate.schema import upgrade

    path = tmp_path / "gone.db"
    database = Database.from_url(f"sqlite:///{path}")
    upgrade(database.engine)
    app = create_app(replace(settings, database_url=f"sqlite:///{path}"), database=database)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    path.unlink()  # e.g. the demo folder rebuilt under a server that kept running
    response = client.get("/healthz")
    assert response.status_code == 503 and "missing" in response.get_json()["reason"]
    database.dispose()


def test_healthz_answers_within_two_seconds_when_the_database_hangs(
    settings: Settings, silent_port: int
) -> None:
    """A server that accepts the connection and never answers: the probe's deadline answers."""
    hung = replace(settings, database_url=f"postgresql+psycopg://smsgate@127.0.0.1:{silent_port}/smsgate")
    response, elapsed = _get(hung)
    assert response.status_code == 503
    assert "did not answer within" in response.get_json()["reason"]
    assert elapsed < 2.0


def test_healthz_answers_within_two_seconds_while_a_writer_holds_sqlite(settings: Settings) -> None:
    if settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite's write lock")
    blocker = Database.from_url(settings.database_url)
    with blocker.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: holds the write lock
        response, elapsed = _get(settings)
    blocker.dispose()
    assert response.status_code == 503 and elapsed < 2.0
    assert os.path.exists(make_url(settings.database_url).database)
