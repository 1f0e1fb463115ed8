"""A broken deployment says so in one line: CLI errors, ``serve``/``worker`` refusing to start,
``init`` saying what it created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from smsgate.cli import main
from smsgate.config import Settings

from .conftest import smsgate


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_a_command_before_init_says_run_init_and_creates_no_file(tmp_path: Path) -> None:
    simulate = ["simulate", "--url", "http://127.0.0.1:9", "--auth-token", "t", "--messages", "1"]
    for args in (["tally"], ["outbox", "status"], ["remind", "--dry-run"], ["gateways", "status"], simulate):
        result = smsgate(*args, env={}, cwd=tmp_path)
        assert result.returncode == 1, result
        line = _one_line(result.stderr)
        assert "run smsgate init" in line and "smsgate.db" in line and "Traceback" not in result.stderr
    assert not (tmp_path / "smsgate.db").exists()


def test_serve_and_worker_refuse_to_start_without_a_schema(tmp_path: Path) -> None:
    env = {"SMSGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'missing.db'}"}
    for args in (["serve", "--port", "0"], ["worker", "--once"]):
        result = smsgate(*args, env=env, cwd=tmp_path, timeout=30)
        assert result.returncode == 1, result
        assert "run smsgate init" in _one_line(result.stderr)
    empty = tmp_path / "empty.db"
    empty.touch()  # a file that is not an smsgate database
    result = smsgate("serve", "--port", "0", env={"SMSGATE_DATABASE_URL": f"sqlite:///{empty}"}, cwd=tmp_path)
    assert result.returncode == 1 and "has no smsgate schema: run smsgate init" in _one_line(result.stderr)


def test_serve_refuses_a_schema_behind_the_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    assert smsgate("init", env={"SMSGATE_DATABASE_URL": url}, cwd=tmp_path).returncode == 0
    engine = create_engine(url)
    with engine.begin() as connection:  # as if a newer release added a migration we did not run
        newest = connection.execute(text("SELECT max(version_num) FROM alembic_version")).scalar_one()
        connection.execute(text("DELETE FROM alembic_version WHERE version_num = :v"), {"v": newest})
    engine.dispose()
    result = smsgate("serve", "--port", "0", env={"SMSGATE_DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 1, result
    assert "schema is not up to date: run smsgate init" in _one_line(result.stderr)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": newest})
        connection.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    engine.dispose()
    result = smsgate("worker", "--once", env={"SMSGATE_DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 1 and "revision 9999" in _one_line(result.stderr)


def test_init_says_what_it_created(tmp_path: Path) -> None:
    env = {"SMSGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    first = smsgate("init", env=env, cwd=tmp_path)
    assert first.returncode == 0, first
    assert f"created the SQLite database {tmp_path / 'new.db'}" in first.stdout
    assert "created the smsgate schema (" in first.stdout and "tables" in first.stdout
    again = smsgate("init", env=env, cwd=tmp_path)
    assert "schema already up to date" in again.stdout
    missing_folder = {"SMSGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'nope' / 'x.db'}"}
    result = smsgate("init", env=missing_folder, cwd=tmp_path)
    assert result.returncode == 1 and "folder" in _one_line(result.stderr)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SMSGATE_POLLS_CLOSE", "14 Feb 2024 13:00"),
        ("SMSGATE_FLOOD_PER_MINUTE", "ten"),
        ("SMSGATE_LATE_HOURS", "12h"),
        ("SMSGATE_SEND_RATE", "android=fast"),
        ("SMSGATE_TIMEZONE", "WITA"),
        ("SMSGATE_TRUSTED_PROXIES", "caddy"),
        ("SMSGATE_SQLITE_SYNCHRONOUS", "off"),
    ],
)
def test_a_bad_variable_is_one_line_naming_it(
    tmp_path: Path, database_url: str, variable: str, value: str
) -> None:
    result = CliRunner().invoke(main, ["tally"], env={"SMSGATE_DATABASE_URL": database_url, variable: value})
    assert result.exit_code == 1, result.output
    line = _one_line(result.output)
    assert line.startswith(f"Error: {variable}: ") and "Traceback" not in result.output


def test_a_closed_port_is_one_line_with_the_password_masked(tmp_path: Path, closed_port: int) -> None:
    url = f"postgresql://smsgate:s3cret@127.0.0.1:{closed_port}/smsgate"
    for args in (["tally"], ["serve", "--port", "0"], ["worker", "--once"]):
        result = smsgate(*args, env={"SMSGATE_DATABASE_URL": url}, cwd=tmp_path)
        assert result.returncode == 1, result
        line = _one_line(result.stderr)
        assert "connection refused" in line and f"127.0.0.1:{closed_port}" in line
        assert "s3cret" not in result.stderr and "***" in line


def test_postgres_urls_are_accepted() -> None:
    settings = Settings.from_env({"SMSGATE_DATABASE_URL": "postgres://u:p@db.example.org/smsgate"})
    assert settings.database_url == "postgresql+psycopg://u:p@db.example.org/smsgate"
    settings = Settings.from_env({"SMSGATE_DATABASE_URL": "postgresql://u@db/smsgate"})
    assert settings.database_url == "postgresql+psycopg://u@db/smsgate"


def _postgres() -> str:
    url = os.environ.get("SMSGATE_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (SMSGATE_TEST_DATABASE_URL)")
    return url


def test_a_heroku_style_url_works_end_to_end(tmp_path: Path, database_url: str) -> None:
    _postgres()
    heroku = make_url(database_url).set(drivername="postgres").render_as_string(hide_password=False)
    assert heroku.startswith("postgres://")
    result = smsgate("tally", env={"SMSGATE_DATABASE_URL": heroku}, cwd=tmp_path)
    assert result.returncode == 0, result
    assert "stations: 0/0 reported" in result.stdout


def test_a_missing_postgresql_database_says_how_to_create_it(tmp_path: Path) -> None:
    url = make_url(_postgres()).set(database="smsgate_does_not_exist", password="s3cret")
    result = smsgate(
        "serve",
        "--port",
        "0",
        env={"SMSGATE_DATABASE_URL": url.render_as_string(hide_password=False)},
        cwd=tmp_path,
    )
    assert result.returncode == 1, result
    line = _one_line(result.stderr)
    assert 'database "smsgate_does_not_exist" does not exist' in line and "createdb" in line
    assert "s3cret" not in line


def test_serve_and_worker_log_every_check_at_start(tmp_path: Path) -> None:
    """A database that is migrated but empty starts (nothing stops the server), and every
    problem ``smsgate check`` would print is a log line of ``serve`` and ``worker``."""
    import signal
    import subprocess
    import time

    from .conftest import SMSGATE

    url = f"sqlite:///{tmp_path / 'smsgate.db'}"
    assert smsgate("init", env={"SMSGATE_DATABASE_URL": url}, cwd=tmp_path).returncode == 0
    env = {"SMSGATE_DATABASE_URL": url, "TWILIO_AUTH_TOKEN": "t"}
    worker = smsgate("worker", "--once", env=env, cwd=tmp_path)
    assert worker.returncode == 0, worker
    expected = ("check: error: no candidates imported", "check: warning: SMSGATE_POLLS_CLOSE is unset")
    for line in expected:
        assert line in worker.stderr, worker.stderr

    base = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGATE_", "TWILIO_"))}
    serve = subprocess.Popen(
        [*SMSGATE, "serve", "--port", "0"],
        env=base | env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    seen: list[str] = []
    try:
        assert serve.stderr is not None
        deadline = time.monotonic() + 120
        while not all(any(e in s for s in seen) for e in expected) and time.monotonic() < deadline:
            line = serve.stderr.readline()
            if not line:
                break
            seen.append(line)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
    for line in expected:
        assert any(line in s for s in seen), "".join(seen)
