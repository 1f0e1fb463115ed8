"""Gammu SMSD end to end: the RunOnReceive hook spools and exits, ``smsgate gammu forward``
posts the spool with retries and sends the reply with ``gammu-smsd-inject``.

Shapes from gammu's own documentation and source (gammu/gammu): docs/manual/smsd/run.rst (the
hook's environment: ``SMS_MESSAGES``, ``SMS_n_NUMBER``, ``SMS_n_TEXT``, ``SMS_n_CLASS``,
``SMS_n_REFERENCE``, ``DECODED_PARTS``, ``DECODED_n_TEXT``, ``PHONE_ID``; inbox ids as arguments;
run synchronously, given up after two minutes and possibly run again), smsd/services/files.c
(inbox file names ``IN<yyyymmdd>_<hhmmss>_<serial>_<number>_<part>.txt``) and smsd/inject.c
(``gammu-smsd-inject TEXT <number> [-unicode] -text <text>`` printing
``Written message with ID <id>``).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from werkzeug.serving import make_server

from smsgate.cli import main
from smsgate.gammu import Forwarder, parse_spool
from smsgate.models import InboundMessage, Report
from tests.support import VOLUNTEER_A, VOLUNTEER_ALUH

from .helpers import KANNEL_SECRET

HOOK = Path(__file__).parents[2] / "contrib" / "gammu-smsd-runonreceive.sh"
REPORT_A = "TPS 012 01=10 02=20 03=30"
REPORT_ALUH = "TPS 001 01=1 02=2 03=3"


def run_hook(spool: Path, inbox_ids: list[str], **env: str) -> subprocess.CompletedProcess:
    """The hook as gammu-smsd runs it: through the shell, inbox ids appended, message in the env."""
    environ = {"PATH": os.environ["PATH"], "SMSGATE_GAMMU_SPOOL": str(spool), **env}
    return subprocess.run(["/bin/sh", str(HOOK), *inbox_ids], env=environ, capture_output=True, timeout=30)


def single(number: str, text: str, phone_id: str | None = "modem-1") -> dict[str, str]:
    env = {
        "SMS_MESSAGES": "1",
        "SMS_1_NUMBER": number,
        "SMS_1_TEXT": text,
        "SMS_1_CLASS": "-1",
        "SMS_1_REFERENCE": "0",
        "DECODED_PARTS": "0",
    }
    if phone_id:
        env["PHONE_ID"] = phone_id
    return env


@pytest.fixture
def server_url(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/webhooks/gammu"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def inject(tmp_path: Path) -> tuple[str, Path]:
    """A stand-in ``gammu-smsd-inject`` (a real program) recording each call's arguments."""
    log = tmp_path / "inject.log"
    script = tmp_path / "gammu-smsd-inject"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"open({str(log)!r}, 'a').write(repr(sys.argv[1:]) + '\\n')\n"
        "print('Written message with ID /var/spool/gammu/outbox/OUTC20240214_083000_00_x_sms0.txt')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), log


def test_the_hook_only_spools_and_exits(tmp_path):  # type: ignore[no-untyped-def]
    spool = tmp_path / "spool"
    result = run_hook(spool, ["IN20240214_083000_00_+6281100000001_00.txt"], **single(VOLUNTEER_A, REPORT_A))
    assert result.returncode == 0, result.stderr
    [spooled] = [p for p in spool.iterdir()]
    sms = parse_spool(spooled.read_bytes())
    assert sms is not None
    assert (sms.sender, sms.text, sms.device) == (VOLUNTEER_A, REPORT_A, "modem-1")
    assert sms.message_id.startswith("gammu:modem-1:IN20240214_083000_00_+6281100000001_00.txt:")


def test_a_multipart_message_is_joined_and_any_text_survives_the_spool(tmp_path):  # type: ignore[no-untyped-def]
    spool = tmp_path / "spool"
    text = "LAPOR TPS 012 ꦲꦏ꧀ꦱꦫ 👍\nbaris kedua"
    env = {
        "SMS_MESSAGES": "2",
        "SMS_1_NUMBER": VOLUNTEER_A,
        "SMS_1_TEXT": text[:10],
        "SMS_2_NUMBER": VOLUNTEER_A,
        "SMS_2_TEXT": text[10:],
        "DECODED_PARTS": "1",
        "DECODED_1_TEXT": text,
    }
    assert run_hook(spool, ["101", "102"], **env).returncode == 0
    [spooled] = list(spool.iterdir())
    sms = parse_spool(spooled.read_bytes())
    assert sms is not None and sms.text == text
    del env["DECODED_1_TEXT"]
    env["DECODED_PARTS"] = "0"
    assert parse_spool(b"\0".join(f"{k}={v}".encode() for k, v in env.items())).text == text  # type: ignore[union-attr]


def test_forward_posts_stores_and_answers_through_gammu_smsd_inject(
    tmp_path, server_url, inject, database, world
):  # type: ignore[no-untyped-def]
    command, log = inject
    spool = tmp_path / "spool"
    run_hook(spool, ["IN20240214_083000_00_+6281100000001_00.txt"], **single(VOLUNTEER_A, REPORT_A))
    result = CliRunner().invoke(
        main,
        ["gammu", "forward", "--spool", str(spool), "--url", server_url, "--inject", command, "--once"],
        env={"SMSGATE_KANNEL_SECRET": KANNEL_SECRET},
    )
    assert result.exit_code == 0, result.output
    assert list(spool.iterdir()) == []
    with database.read() as session:
        [row] = session.scalars(select(InboundMessage)).all()
        assert (row.provider, row.from_number, row.device, row.body) == (
            "gammu",
            VOLUNTEER_A,
            "modem-1",
            REPORT_A,
        )
    [call] = log.read_text().splitlines()
    assert call.startswith(f"['TEXT', '{VOLUNTEER_A}', '-text', 'OK TPS 012 01=10 02=20 03=30")


def test_two_modems_with_the_same_inbox_id_are_two_messages_each_answered_to_its_sender(  # type: ignore[no-untyped-def]
    tmp_path, server_url, inject, database, world
):
    command, log = inject
    spool = tmp_path / "spool"
    run_hook(spool, ["101"], **single(VOLUNTEER_A, REPORT_A, phone_id="modem-1"))
    run_hook(spool, ["101"], **single(VOLUNTEER_ALUH, REPORT_ALUH, phone_id="modem-2"))
    run_hook(spool, ["101"], **single(VOLUNTEER_A, REPORT_A, phone_id="modem-1"))  # Gammu ran it again
    forwarder = Forwarder(spool, server_url, KANNEL_SECRET, inject=command)
    assert forwarder.forward_once() == (3, 0)
    with database.read() as session:
        rows = session.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
        assert [(r.from_number, r.device) for r in rows] == [
            (VOLUNTEER_A, "modem-1"),
            (VOLUNTEER_ALUH, "modem-2"),
        ]
        assert len(session.scalars(select(Report)).all()) == 2
    calls = log.read_text().splitlines()
    assert [c.split(",")[1].strip(" '") for c in calls] == [VOLUNTEER_A, VOLUNTEER_ALUH, VOLUNTEER_A]
    assert "TPS 001" in calls[1] and "TPS 012" not in calls[1]


def test_a_spool_file_stays_until_smsgate_has_stored_it(tmp_path, server_url, inject, database, world):  # type: ignore[no-untyped-def]
    command, log = inject
    spool = tmp_path / "spool"
    run_hook(spool, ["7"], **single(VOLUNTEER_A, REPORT_A))
    down = Forwarder(spool, "http://127.0.0.1:1/webhooks/gammu", KANNEL_SECRET, inject=command)
    assert down.forward_once() == (0, 1)
    broken_inject = Forwarder(spool, server_url, KANNEL_SECRET, inject="/nonexistent/gammu-smsd-inject")
    assert broken_inject.forward_once() == (0, 1)  # stored, but the reply is not out yet: kept
    assert len(list(spool.iterdir())) == 1
    assert Forwarder(spool, server_url, KANNEL_SECRET, inject=command).forward_once() == (1, 0)
    with database.read() as session:
        assert len(session.scalars(select(InboundMessage)).all()) == 1
        assert len(session.scalars(select(Report)).all()) == 1
    assert len(log.read_text().splitlines()) == 1


def test_a_spool_file_smsgate_refuses_for_good_is_set_aside(tmp_path, server_url, inject):  # type: ignore[no-untyped-def]
    command, _ = inject
    spool = tmp_path / "spool"
    run_hook(spool, ["8"], **single(VOLUNTEER_A, REPORT_A))
    wrong_secret = Forwarder(spool, server_url, "not-the-secret", inject=command)
    assert wrong_secret.forward_once() == (1, 0)
    assert [p.name for p in (spool / "rejected").iterdir()] and not [
        p for p in spool.iterdir() if p.is_file()
    ]
