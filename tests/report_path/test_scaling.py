"""Past one machine: several app servers on one PostgreSQL database, and PgBouncer between them.

Both run real processes: ``smsgate serve`` twice on two ports (as if on two machines behind a
load balancer) and Debian's ``/usr/sbin/pgbouncer`` in transaction pooling mode on a free port.
PostgreSQL only (SQLite is one file on one machine).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from smsgate.config import Settings
from smsgate.db import Database
from smsgate.importers import upsert_contacts
from smsgate.inbound import InboundSMS
from smsgate.models import InboundMessage, Report, StationResult
from smsgate.services.ingest import Ingest
from tests.gateways.helpers import free_port, smsgate_serve
from tests.support import (
    AUTH_TOKEN,
    KURIPAN,
    PUBLIC_URL,
    VOLUNTEER_A,
    VOLUNTEER_ALUH,
    VOLUNTEER_B,
    VOLUNTEER_EN,
    new_sid,
    twilio_signature,
    twiml_text,
)

PGBOUNCER = "/usr/sbin/pgbouncer"
MANTUIL_12 = "6371011001012"
#: A volunteer of Kuripan TPS 001, who warms the servers up.
WARM_UP = {"phone": "+6281100000099", "name": "Warm", "role": "volunteer", "region_code": KURIPAN, "tps": 1}
#: Volunteers of the test world with their TPS number: two share Mantuil TPS 012.
SENDERS = ((VOLUNTEER_A, 12), (VOLUNTEER_B, 12), (VOLUNTEER_EN, 1), (VOLUNTEER_ALUH, 1))


@pytest.fixture
def postgresql_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("several servers and PgBouncer need PostgreSQL")
    return database_url


def with_default_flood_control(settings: Settings) -> Settings:
    defaults = Settings.from_env({})
    return replace(
        settings,
        flood_per_minute=defaults.flood_per_minute,
        flood_replies_per_hour=defaults.flood_replies_per_hour,
        flood_duplicate_seconds=defaults.flood_duplicate_seconds,
    )


def tally_verify(database_url: str) -> subprocess.CompletedProcess[str]:
    smsgate = str(Path(sys.executable).parent / "smsgate")
    return subprocess.run(
        [smsgate, "tally", "--verify"],
        env={**os.environ, "SMSGATE_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- several servers -------------------------------------------------------------------------


def post_twilio(base_url: str, form: dict[str, str]) -> tuple[int, str]:
    """A signed Twilio webhook as Twilio sends it; the signature is over the public URL both
    servers share, as behind a load balancer."""
    signature = twilio_signature(PUBLIC_URL + "/webhooks/twilio", form)
    request = urllib.request.Request(
        base_url + "/webhooks/twilio",
        data=urllib.parse.urlencode(form).encode(),
        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read().decode()


def test_two_servers_on_one_database_store_each_message_once_and_answer_alike(postgresql_url, world):
    env = {
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SMSGATE_PUBLIC_URL": PUBLIC_URL,
        # The flood limits a server runs with by default: 10 a minute per sender is enough here.
        "SMSGATE_FLOOD_PER_MINUTE": str(Settings.from_env({}).flood_per_minute),
    }
    # Every message (a correction each time: new counts) goes to both servers twice, all at once.
    messages = []
    for round_ in range(4):
        for phone, tps in SENDERS:
            body = f"TPS {tps:03d} 01={50 + round_} 02={40 + round_} 03=30"
            messages.append(_form(phone, body))
    database = Database.from_url(postgresql_url)
    with database.begin() as session:
        upsert_contacts(session, [WARM_UP], give_pins=False)
    with smsgate_serve(postgresql_url, **env) as first, smsgate_serve(postgresql_url, **env) as second:
        # A cold worker's first report (imports, the grammar, compiling each statement) is slow
        # on a loaded machine: one report through each server first, from a sender of its own.
        for index, server in enumerate((first, second)):
            status, body = post_twilio(server, _form(WARM_UP["phone"], f"TPS 001 01={10 + index} 02=1 03=1"))
            assert status == 200 and (twiml_text(body) or "").startswith("OK TPS"), body
        deliveries = [(server, form) for form in messages for server in (first, second, second, first)]
        # Two at a time: each message reaches both servers at once. More would queue several
        # deliveries behind one sender's lock, and on a starved machine the last of them can
        # outwait its bound (8 s) and be asked to send again: by design, but not this test's point.
        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(lambda job: post_twilio(*job), deliveries))
    by_message: dict[str, set[tuple[int, str]]] = {}
    for (_server, form), answer in zip(deliveries, answers, strict=True):
        by_message.setdefault(form["MessageSid"], set()).add(answer)
    for sid, seen in by_message.items():
        assert len(seen) == 1, f"{sid} answered differently: {seen}"
        [(status, body)] = seen
        assert status == 200
        reply = twiml_text(body)
        assert reply is not None and reply.startswith("OK TPS"), reply
    try:
        with database.read() as session:
            logged = session.execute(
                select(InboundMessage.provider_message_id, func.count())
                .where(InboundMessage.from_number != WARM_UP["phone"])
                .group_by(InboundMessage.provider_message_id)
            ).all()
            assert sorted(sid for sid, _ in logged) == sorted(by_message)
            assert all(count == 1 for _, count in logged)
            accepted = session.scalar(select(func.count()).where(InboundMessage.outcome == "accepted"))
            assert session.scalar(select(func.count()).select_from(Report)) == accepted
            result = session.get(StationResult, MANTUIL_12)
            assert result is not None and result.report_count == 2  # one current report per volunteer
    finally:
        database.dispose()
    verified = tally_verify(postgresql_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _form(phone: str, body: str) -> dict[str, str]:
    sid = new_sid()
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC00000000000000000000000000000000",
        "From": phone,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
    }


# -- PgBouncer -------------------------------------------------------------------------------


@contextmanager
def pgbouncer(server_url: str, folder: Path) -> Iterator[int]:
    """Debian's PgBouncer in transaction pooling mode on a free port, in front of the test's
    PostgreSQL server, with two server connections per database so concurrent transactions
    share them; yields its port. ``folder`` gets its log."""
    if not Path(PGBOUNCER).exists():
        pytest.skip(f"{PGBOUNCER} is not installed")
    url = make_url(server_url)
    port = free_port()
    # PgBouncer refuses to run as root and drops to ``nobody`` (-u), who must read its files:
    # they go in a world-readable directory of their own; its log goes to a file we opened.
    shared = Path(tempfile.mkdtemp(prefix="smsgate-pgbouncer-"))
    shared.chmod(0o755)
    users = shared / "users.txt"
    users.write_text(f'"{url.username}" ""\n')
    config = shared / "pgbouncer.ini"
    config.write_text(
        "\n".join(
            [
                "[databases]",
                f"* = host={url.host or '127.0.0.1'} port={url.port or 5432}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {users}",
                "pool_mode = transaction",
                "default_pool_size = 2",
                "max_client_conn = 200",
                "log_connections = 0",
                "log_disconnections = 0",
                "",
            ]
        )
    )
    for path in (users, config):
        path.chmod(0o644)
    command = [PGBOUNCER, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(config)]
    log = folder / "pgbouncer.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=output)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"pgbouncer did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(shared, ignore_errors=True)


def test_reports_through_pgbouncer_in_transaction_pooling_mode(postgresql_url, settings, world, tmp_path):
    """Many transactions from many client connections over two server connections: psycopg
    would prepare a statement after its fifth use on one connection, and in transaction
    pooling mode the next transaction runs on a server connection that never saw it."""
    with pgbouncer(postgresql_url, tmp_path) as port:
        bounced = make_url(postgresql_url).set(host="127.0.0.1", port=port)
        url = bounced.update_query_dict({"pgbouncer": "true"}).render_as_string(hide_password=False)
        database = Database.from_url(url)
        try:
            with database.engine.connect() as connection:
                assert connection.connection.dbapi_connection.prepare_threshold is None
            ingest = Ingest(database, with_default_flood_control(replace(settings, database_url=url)))
            sent: list[tuple[InboundSMS, str]] = []
            lock = threading.Lock()

            def send(phone: str, tps: int, round_: int) -> None:
                body = f"TPS {tps:03d} 01={50 + round_} 02=40 03=30"
                sms = InboundSMS("twilio", new_sid(), phone, body)
                reply = ingest.receive(sms)
                assert reply.stored and reply.text is not None and reply.text.startswith("OK TPS"), reply
                again = ingest.receive(sms)  # a redelivery, answered the same
                assert again.text == reply.text
                with lock:
                    sent.append((sms, reply.text))

            jobs = [(phone, tps, round_) for round_ in range(8) for phone, tps in SENDERS]
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda job: send(*job), jobs))
            assert len(sent) == len(jobs)
            with database.read() as session:
                assert session.scalar(select(func.count()).select_from(Report)) == len(jobs)
                assert session.scalar(select(func.count()).select_from(InboundMessage)) == len(jobs)
        finally:
            database.dispose()
    verified = tally_verify(postgresql_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_pgbouncer_url_turns_prepared_statements_off():
    from smsgate.db import libpq_url, make_engine, through_pgbouncer

    url = "postgresql+psycopg://smsgate@127.0.0.1:6432/smsgate?pgbouncer=true&connect_timeout=3"
    assert through_pgbouncer(url)
    assert not through_pgbouncer("postgresql+psycopg://smsgate@127.0.0.1:5432/smsgate")
    assert "pgbouncer" not in libpq_url(url).query and libpq_url(url).query["connect_timeout"] == "3"
    engine = make_engine(url)
    try:
        assert "pgbouncer" not in engine.url.query
    finally:
        engine.dispose()
