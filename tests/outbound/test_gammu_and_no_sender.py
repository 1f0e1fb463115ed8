"""A Gammu-only deployment sends through ``gammu-smsd-inject``; an SMS for a provider with no
configured sender fails with that reason, shown by ``smsgate outbound status`` and the dashboard.

``gammu-smsd-inject TEXT <number> [-unicode] -text <text>`` exits 0 and prints
``Written message with ID <id>`` when the message is in gammu-smsd's outbox (gammu/gammu,
smsd/inject.c); here a stand-in program on disk answers the same way and records its arguments.
"""

from __future__ import annotations

import stat
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from smsgate.cli import main
from smsgate.dashboard.accounts import create_user
from smsgate.models import OutboundMessage, utcnow
from smsgate.outgoing.sms_job import OutboundJob
from smsgate.services.reminders import remind
from tests.dashboard.conftest import ADMIN, PASSWORD, login
from tests.gateways.helpers import KANNEL_SECRET
from tests.support import VOLUNTEER_A

NOW = datetime.now(UTC)


def fake_inject(tmp_path: Path, exit_status: int = 0) -> tuple[str, Path]:
    log = tmp_path / "inject.log"
    script = tmp_path / "gammu-smsd-inject"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"open({str(log)!r}, 'a', encoding='utf-8').write(repr(sys.argv[1:]) + '\\n')\n"
        "print('gammu-smsd-inject[1]: Created outbox message OUTC20240214_083000_00_x_sms0.txt')\n"
        "print('Written message with ID /var/spool/gammu/outbox/OUTC20240214_083000_00_x_sms0.txt')\n"
        f"sys.exit({exit_status})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return f"{script} -c /etc/gammu-smsdrc", log


def wrote_through_gammu(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/webhooks/gammu",
        data={"sender": VOLUNTEER_A, "text": "CEK", "id": "gammu:modem-1:101:x", "time": "1707900000"},
        headers={"X-Smsgate-Secret": KANNEL_SECRET},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert response.status_code == 200


def queue_reminder(database, settings) -> OutboundMessage:  # type: ignore[no-untyped-def]
    with database.begin() as session:
        assert remind(session, settings, "63.71.01.1001", NOW) >= 1
    with database.read() as session:
        return session.scalars(select(OutboundMessage).where(OutboundMessage.to_number == VOLUNTEER_A)).one()


def test_a_gammu_only_deployment_sends_reminders_through_gammu_smsd_inject(  # type: ignore[no-untyped-def]
    client, database, world, settings, tmp_path
):
    command, log = fake_inject(tmp_path)
    gammu_only = replace(settings, twilio_account_sid=None, gammu_inject=command, send_rates={"gammu": 100.0})
    wrote_through_gammu(client)
    row = queue_reminder(database, gammu_only)
    assert row.provider == "gammu"
    job = OutboundJob(gammu_only, clock=lambda: NOW + timedelta(seconds=1))
    assert "gammu" in job.senders
    job.run_once(database)
    with database.read() as session:
        sent = session.get(OutboundMessage, row.id)
        assert (sent.status, sent.provider_message_id) == (
            "sent",
            "/var/spool/gammu/outbox/OUTC20240214_083000_00_x_sms0.txt",
        )
    [call] = log.read_text(encoding="utf-8").splitlines()
    assert call == repr(["-c", "/etc/gammu-smsdrc", "TEXT", VOLUNTEER_A, "-text", row.text])


def test_gammu_smsd_inject_failing_is_retried_not_lost(client, database, world, settings, tmp_path):  # type: ignore[no-untyped-def]
    command, _ = fake_inject(tmp_path, exit_status=3)
    gammu_only = replace(settings, gammu_inject=command, send_rates={"gammu": 100.0})
    wrote_through_gammu(client)
    row = queue_reminder(database, gammu_only)
    OutboundJob(gammu_only, clock=lambda: NOW + timedelta(seconds=1)).run_once(database)
    with database.read() as session:
        again = session.get(OutboundMessage, row.id)
        assert again.status == "queued" and "exit 3" in (again.last_error or "")


def test_an_sms_for_a_provider_without_a_sender_fails_with_that_reason(  # type: ignore[no-untyped-def]
    client, app, database, database_url, world, settings
):
    wrote_through_gammu(client)
    row = queue_reminder(database, settings)
    job = OutboundJob(replace(settings, gammu_inject=None), clock=lambda: NOW + timedelta(seconds=1))
    assert "gammu" not in job.senders
    job.run_once(database)
    reason = "no sender configured for provider gammu; set SMSGATE_GAMMU_INJECT"
    with database.read() as session:
        failed = session.get(OutboundMessage, row.id)
        assert (failed.status, failed.last_error) == ("failed", reason)
    status = CliRunner().invoke(main, ["outbound", "status"], env={"SMSGATE_DATABASE_URL": database_url})
    assert status.exit_code == 0, status.output
    assert "gammu      failed 1" in status.output
    assert f"failed #{row.id} gammu to {VOLUNTEER_A}: {reason}" in status.output
    with database.begin() as session:
        create_user(session, email=ADMIN, password=PASSWORD, role="admin", region=None, now=utcnow())
    browser = app.test_client()
    assert login(browser, ADMIN).status_code == 302
    page = browser.get("/dashboard/messages?outcome=failed")
    assert page.status_code == 200 and reason in page.get_data(as_text=True)
