"""SQLite syncs its write-ahead log at every commit (``synchronous=FULL``) unless the operator
chooses ``NORMAL``: a report answered OK must survive a power cut of the laptop it runs on."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from smsgate import create_app
from smsgate.config import Settings

from .conftest import smsgate

#: ``PRAGMA synchronous`` answers a number: 1 NORMAL, 2 FULL.
NORMAL, FULL = 1, 2


def _synchronous(environ: dict[str, str]) -> int:
    app = create_app(Settings.from_env(environ))
    database = app.extensions["smsgate.database"]
    try:
        with database.begin() as session:  # a write transaction, as a webhook's
            return int(session.execute(text("PRAGMA synchronous")).scalar_one())
    finally:
        database.dispose()


def test_the_server_commits_with_full_sync_by_default(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'smsgate.db'}"
    assert smsgate("init", env={"SMSGATE_DATABASE_URL": url}, cwd=tmp_path).returncode == 0
    assert _synchronous({"SMSGATE_DATABASE_URL": url}) == FULL
    assert _synchronous({"SMSGATE_DATABASE_URL": url, "SMSGATE_SQLITE_SYNCHRONOUS": "normal"}) == NORMAL
    assert _synchronous({"SMSGATE_DATABASE_URL": url, "SMSGATE_SQLITE_SYNCHRONOUS": "FULL"}) == FULL
