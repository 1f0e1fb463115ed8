"""The files in ``deploy/`` are checked by the tools that will read them: ``systemd-analyze
verify`` for the units, ``caddy validate`` for the Caddyfile, ``psql`` for the PostgreSQL set-up.

Debian ships all three (``systemd``, ``caddy``, ``postgresql-client``); ``.ci/system-packages``
installs caddy. A test skips only when its tool is absent and says which.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from smsgate.server import gunicorn_options

DEPLOY = Path(__file__).parent.parent.parent / "deploy"
UNITS = ["smsgate-serve.service", "smsgate-worker.service", "smsgate-backup.service", "smsgate-backup.timer"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package: {'caddy' if name == 'caddy' else name})")
    return path


def test_systemd_units_verify_cleanly(tmp_path: Path) -> None:
    """``systemd-analyze verify`` also checks that ExecStart exists: point it at this venv."""
    analyze = _tool("systemd-analyze")
    smsgate = Path(sys.executable).parent / "smsgate"
    assert smsgate.exists(), "the smsgate console script of this environment"
    for name in UNITS:
        text_ = (
            (DEPLOY / name)
            .read_text(encoding="utf-8")
            .replace("/opt/smsgate/.venv/bin/smsgate", str(smsgate))
        )
        (tmp_path / name).write_text(text_, encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    # Unknown keys and bad values are only warnings to systemd: any output is a failure here.
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), result


def test_units_run_the_documented_commands() -> None:
    serve = (DEPLOY / "smsgate-serve.service").read_text(encoding="utf-8")
    worker = (DEPLOY / "smsgate-worker.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/smsgate/.venv/bin/smsgate serve --host 127.0.0.1 --port 8000" in serve
    assert "ExecStart=/opt/smsgate/.venv/bin/smsgate worker\n" in worker
    assert (
        "EnvironmentFile=/etc/smsgate/smsgate.env" in serve
        and "EnvironmentFile=/etc/smsgate/smsgate.env" in worker
    )
    timer = (DEPLOY / "smsgate-backup.timer").read_text(encoding="utf-8")
    assert "OnCalendar=*-*-* 02:30:00" in timer and "Persistent=true" in timer


def test_caddyfile_validates(tmp_path: Path) -> None:
    caddy = _tool("caddy")
    env = {
        **os.environ,
        "SMSGATE_DOMAIN": "sms.example.org",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
    }
    result = subprocess.run(
        [caddy, "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr
    adapted = subprocess.run(
        [caddy, "adapt", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert '"dial":"127.0.0.1:8000"' in adapted.stdout and '"sms.example.org"' in adapted.stdout
    # Caddy must drop an idle connection to smsgate before gunicorn does: otherwise a webhook
    # written into it as gunicorn closes it fails with a 502 that nobody resends.
    idle_timeouts = [
        handler.get("transport", {}).get("keep_alive", {}).get("idle_timeout")
        for handler in _handlers(json.loads(adapted.stdout))
        if handler.get("handler") == "reverse_proxy"
    ]
    assert idle_timeouts and None not in idle_timeouts, (
        "the reverse proxy keeps idle upstream connections for Caddy's default 2 minutes"
    )
    gunicorn_keepalive_ns = gunicorn_options("127.0.0.1", 8000, 1)["keepalive"] * 1_000_000_000
    assert all(0 < timeout < gunicorn_keepalive_ns for timeout in idle_timeouts), idle_timeouts


def _handlers(node: object) -> list[dict[str, Any]]:
    """Every handler object anywhere in Caddy's adapted JSON configuration."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "handler" in node:
            found.append(node)
        for value in node.values():
            found.extend(_handlers(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_handlers(value))
    return found


def test_postgresql_setup_creates_a_database_init_accepts(tmp_path: Path) -> None:
    url = os.environ.get("SMSGATE_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (SMSGATE_TEST_DATABASE_URL)")
    psql = _tool("psql")
    base = make_url(url)
    suffix = uuid.uuid4().hex[:8]
    role, dbname, password = f"smsgate_role_{suffix}", f"smsgate_deploy_{suffix}", f"pw-{suffix}"
    connection = [
        psql,
        "-h",
        base.host or "127.0.0.1",
        "-p",
        str(base.port or 5432),
        "-U",
        base.username or "postgres",
    ]
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        result = subprocess.run(
            [
                *connection,
                "-d",
                "postgres",
                "-v",
                f"role={role}",
                "-v",
                f"dbname={dbname}",
                "-v",
                f"password='{password}'",
                "-f",
                str(DEPLOY / "postgresql.sql"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        target = base.set(database=dbname, username=role, password=password)
        init = subprocess.run(
            [sys.executable, "-c", "import sys; from smsgate.cli import main; sys.exit(main())", "init"],
            env={**os.environ, "SMSGATE_DATABASE_URL": target.render_as_string(hide_password=False)},
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert init.returncode == 0, init.stderr
        assert "created the smsgate schema" in init.stdout
        assert "prefix index" not in init.stderr  # every index made by the schema's owner
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            c.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
