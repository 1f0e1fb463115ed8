"""The README's Election night checklist, steps 5-14, on PostgreSQL with the real processes:
``init`` -> imports -> ``check`` -> ``serve`` -> a signed SMS through the Android gateway's
webhook -> the tally. A two-candidate race, so the imported candidates (not 01-03) are used."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from smsgate.db import Database
from smsgate.models import OutboundMessage
from webhooks.android import signature

from ..gateways.helpers import envelope
from .conftest import SMSGATE, smsgate

VOLUNTEER = "+6281234567890"


@pytest.fixture
def scratch_url() -> str:
    """A new, empty PostgreSQL database as deploy/postgresql.sql makes one; dropped afterwards."""
    url = os.environ.get("SMSGATE_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("the checklist is for PostgreSQL (SMSGATE_TEST_DATABASE_URL)")
    name = f"smsgate_checklist_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0"))
    yield make_url(url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_checklist_from_init_to_a_confirmed_sms(scratch_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {  # step 4: /etc/smsgate/smsgate.env
        "SMSGATE_DATABASE_URL": scratch_url,
        "SMSGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SMSGATE_SECRET_KEY": "checklist-secret-key",
        "SMSGATE_TIMEZONE": "Asia/Makassar",
        "SMSGATE_POLLS_CLOSE": "2999-02-14T13:00+08:00",
        "SMSGATE_ANDROID_SECRET": "checklist-android-key",
        "SMSGATE_ANDROID_URL": "http://127.0.0.1:9/message",
        "SMSGATE_DEFAULT_PROVIDER": "android",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = smsgate(*args, env=env, cwd=tmp_path, timeout=300)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    assert "created the smsgate schema" in run("init").stdout  # step 5
    files = {
        "regions.csv": "code,name\n63,Kalimantan Selatan\n63.71,Kota Banjarmasin\n"
        "63.71.01,Banjarmasin Selatan\n63.71.01.1001,Mantuil\n",
        "candidates.csv": "code,name\n01,Calon Satu\n02,Calon Dua\n",
        "stations.csv": "region_code,tps,registered_voters\n63.71.01.1001,1,250\n63.71.01.1001,2,240\n",
        "volunteers.csv": "phone,name,role,region_code,tps,lang\n"
        f"{VOLUNTEER},Ani,volunteer,63.71.01.1001,1,\n",
    }
    for name, content in files.items():  # steps 6-9
        (tmp_path / name).write_text(content, encoding="utf-8")
        run("import", name.removesuffix(".csv"), str(tmp_path / name))
    check = run("check")  # step 12
    assert "error:" not in check.stdout and "0 error(s)" in check.stderr, check.stdout

    log = (tmp_path / "serve.log").open("w")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGATE_", "TWILIO_", "PROMETHEUS_"))}
    server = subprocess.Popen(  # step 11
        [*SMSGATE, "serve", "--port", str(port), "--workers", "2"],
        env=base | env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/healthz", timeout=3).json() == {"status": "ok"}:
                    break
            except (requests.RequestException, ValueError):
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        # Step 14: signed webhooks as SMS Gateway for Android sends them (shape: tests/gateways/helpers.py).
        for text_, outcome in (("BANTUAN", "command"), ("TPS 001 01=120 02=98", "accepted")):
            body = json.dumps(envelope(VOLUNTEER, text_)).encode()
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Timestamp": stamp,
                "X-Signature": signature(env["SMSGATE_ANDROID_SECRET"], body, stamp),
            }
            response = requests.post(url + "/webhooks/android", data=body, headers=headers, timeout=30)
            assert response.status_code == 200 and response.json()["outcome"] == outcome, response.text
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    served = (tmp_path / "serve.log").read_text()
    assert served.count("sms android ") == 2 and "+62812****7890: accepted in" in served, served

    database = Database.from_url(scratch_url)
    try:
        with database.read() as session:
            replies = list(
                session.scalars(select(OutboundMessage.text).where(OutboundMessage.to_number == VOLUNTEER))
            )
    finally:
        database.dispose()
    assert len(replies) == 2 and replies[1].startswith("OK"), replies  # queued for the phone to send

    tally = run("tally", "63").stdout  # the two imported candidates, no made-up 03
    assert "01:        120" in tally and "02:         98" in tally and "03:" not in tally, tally
    assert "1/2 reported" in tally
