"""The delivery side of the contract: secret rotation, per-destination schema versions,
catching a destination up (``smsgate outbox replay``), ``Retry-After`` up to the backoff cap,
and the PostgreSQL wake-up that gets an idle worker going the moment an event commits."""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from smsgate import event_schemas
from smsgate.cli import main
from smsgate.models import OutboxDelivery, StationResult, utcnow
from smsgate.outgoing.destinations import ConfigError, load_destinations
from smsgate.outgoing.event_job import OutboxJob
from smsgate.outgoing.wakeup import Wakeup, listen_conninfo
from smsgate.receiver import Store, create_receiver

from ..outbox.support import drain, election_night, outbox_settings, send_all
from ..support import VOLUNTEER_A, VOLUNTEER_B

NEW, OLD = "new-secret", "old-secret"


@dataclass
class Running:
    url: str
    store: Store


@contextmanager
def receiver(tmp_path: Path, name: str, secrets: list[str]) -> Iterator[Running]:
    """``smsgate receive``'s app on a free port, accepting only ``secrets``."""
    app = create_receiver(secrets, str(tmp_path / f"{name}.db"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Running(f"http://127.0.0.1:{server.server_port}/events", app.extensions["smsgate.receiver"])
    finally:
        server.shutdown()
        server.server_close()
        app.extensions["smsgate.receiver"].close()


def destinations_file(tmp_path: Path, entries: list[dict]) -> str:
    path = tmp_path / "destinations.json"
    path.write_text(json.dumps({"destinations": entries}))
    return str(path)


def assert_state_matches(database, store: Store) -> None:  # type: ignore[no-untyped-def]
    with database.read() as session:
        ours = {r.station_id: r for r in session.scalars(select(StationResult)) if r.event_sequence}
    theirs = store.tally()
    assert set(theirs["stations"]) == set(ours)
    for station, state in theirs["stations"].items():
        result = ours[station]
        assert (state["status"], state["votes"], state["report_count"], state["station_sequence"]) == (
            result.status,
            result.votes,
            result.report_count,
            result.event_sequence,
        ), station
    assert theirs["gaps"] == {}


def test_rotation_signs_with_both_secrets_so_either_receiver_verifies(database, settings, sms, tmp_path):  # type: ignore[no-untyped-def]
    send_all(sms, election_night(random.Random(5), rounds=2))
    with (
        receiver(tmp_path, "knows-old", [OLD]) as old_only,
        receiver(tmp_path, "knows-new", [NEW]) as new_only,
    ):
        config = outbox_settings(
            settings,
            old_only.url,
            tally_secret=NEW,
            tally_previous_secret=OLD,
            destinations_file=destinations_file(
                tmp_path, [{"name": "hq", "url": new_only.url, "secret": NEW, "previous_secret": OLD}]
            ),
        )
        job = OutboxJob(config)
        drain(database, job, config)
        job.close()
        for store in (old_only.store, new_only.store):
            assert_state_matches(database, store)
    with database.read() as session:
        assert {d.status for d in session.scalars(select(OutboxDelivery))} == {"delivered"}


def test_destination_settings_json_toml_and_mistakes(settings, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    toml = tmp_path / "destinations.toml"
    toml.write_text(
        '[[destinations]]\nname = "kpu"\nurl = "https://kpu.example/events"\nsecret_env = "KPU_SECRET"\n'
        'previous_secret_env = "KPU_OLD"\nschema_version = 1\n'
        '[[destinations]]\nname = "hq"\nurl = "https://hq.example/events"\nsecret = "s2"\ntimeout = 3\n'
    )
    monkeypatch.setenv("KPU_SECRET", "s1")
    monkeypatch.setenv("KPU_OLD", "s0")
    found = load_destinations(
        replace(settings, tally_url="https://t.example", tally_secret="t1", destinations_file=str(toml))
    )
    assert [(d.name, d.secrets, d.schema_version, d.timeout) for d in found] == [
        ("tally", ("t1",), 2, None),
        ("kpu", ("s1", "s0"), 1, None),
        ("hq", ("s2",), 2, 3),
    ]
    for bad in ({"schema_version": 3}, {"schema_version": "two"}, {"schema_version": True}):
        path = destinations_file(tmp_path, [{"name": "x", "url": "http://x", "secret": "s", **bad}])
        with pytest.raises(ConfigError, match="schema_version"):
            load_destinations(replace(settings, destinations_file=path))
    (tmp_path / "broken.toml").write_text("[[destinations]\nname=")
    with pytest.raises(ConfigError, match="TOML"):
        load_destinations(replace(settings, destinations_file=str(tmp_path / "broken.toml")))
    with pytest.raises(ConfigError, match="SMSGATE_TALLY_SCHEMA_VERSION"):
        load_destinations(
            replace(settings, tally_url="https://t", tally_secret="s", tally_schema_version="9")
        )


def deliver_to_both(database, settings, v2: Running, v1: Running, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every pending event delivered to two destinations: the tally at ``v2`` (the default
    schema version) and ``old-tally`` at ``v1``, which asked for version 1."""
    config = outbox_settings(
        settings,
        v2.url,
        tally_secret=NEW,
        destinations_file=destinations_file(
            tmp_path, [{"name": "old-tally", "url": v1.url, "secret": NEW, "schema_version": 1}]
        ),
    )
    job = OutboxJob(config)
    drain(database, job, config)
    job.close()


def test_each_destination_gets_the_schema_version_it_asked_for(database, settings, sms, tmp_path):  # type: ignore[no-untyped-def]
    send_all(sms, election_night(random.Random(6), rounds=2))
    with receiver(tmp_path, "v2", [NEW]) as v2, receiver(tmp_path, "v1", [NEW]) as v1:
        deliver_to_both(database, settings, v2, v1, tmp_path)
        for store, version in ((v2.store, 2), (v1.store, 1)):
            documents = store.events()
            assert documents and {d["schema_version"] for d in documents} == {version}
            for document in documents:
                assert not event_schemas.errors(document)
        assert v1.store.tally()["totals"] == v2.store.tally()["totals"]


def test_replay_catches_up_a_destination_added_later_and_live_events_follow(  # type: ignore[no-untyped-def]
    app, database, settings, sms, tmp_path
):
    send_all(sms, election_night(random.Random(7), rounds=3))
    with receiver(tmp_path, "tally", [NEW]) as first, receiver(tmp_path, "late", [NEW]) as late:
        config = outbox_settings(settings, first.url, tally_secret=NEW)
        job = OutboxJob(config)
        drain(database, job, config)
        job.close()
        # A second destination joins during the night: it only gets what is dispatched from now on.
        both = replace(
            config,
            destinations_file=destinations_file(tmp_path, [{"name": "late", "url": late.url, "secret": NEW}]),
        )
        runner = CliRunner()
        env = {
            "SMSGATE_DATABASE_URL": settings.database_url,
            "SMSGATE_TALLY_URL": first.url,
            "SMSGATE_TALLY_SECRET": NEW,
            "SMSGATE_DESTINATIONS": both.destinations_file,
        }
        refused = runner.invoke(main, ["outbox", "replay", "--destination", "nobody"], env=env)
        assert refused.exit_code != 0 and "late" in refused.output
        done = runner.invoke(main, ["outbox", "replay", "--destination", "late"], env=env)
        assert done.exit_code == 0, done.output
        with database.read() as session:
            stations = sum(1 for r in session.scalars(select(StationResult)) if r.event_sequence)
        assert f"{stations} " in done.output
        # Live traffic between the replay and its delivery: delivered after the snapshot.
        assert sms(VOLUNTEER_A, "TPS 012 01=1 02=2 03=3").startswith("OK")
        assert sms(VOLUNTEER_B, "TPS 012 01=1 02=2 03=3").startswith("OK")
        job = OutboxJob(both)
        drain(database, job, both)
        job.close()
        assert_state_matches(database, first.store)
        assert_state_matches(database, late.store)
        kinds = [e["type"] for e in late.store.events(station="6371011001012")]
        assert kinds[0] == "station.snapshot" and "station.status_changed" in kinds[1:]
        assert "station.snapshot" not in {e["type"] for e in first.store.events()}


def _answering(status: int, retry_after: str) -> object:
    @Request.application
    def app(request: Request) -> Response:
        request.get_data()
        return Response("busy", status=status, headers={"Retry-After": retry_after})

    return app


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        ("3", 3.0, 3.01),  # honoured (more than the backoff would wait)
        ("100000", 20.0, 20.0),  # capped at SMSGATE_OUTBOX_BACKOFF_MAX
        ("in a while", 0.0, 0.01),  # not a number nor a date: the backoff alone
        ("date+30", 10.0, 30.5),  # an HTTP date (whole seconds, read when the answer arrives)
    ],
)
def test_retry_after_is_honoured_up_to_the_backoff_cap(database, settings, sms, retry_after, low, high):  # type: ignore[no-untyped-def]
    assert sms(VOLUNTEER_A, "TPS 012 01=1 02=2 03=3").startswith("OK")
    if retry_after.startswith("date+"):
        retry_after = format_datetime(utcnow() + timedelta(seconds=int(retry_after[5:])), usegmt=True)
    server = make_server("127.0.0.1", 0, _answering(429, retry_after), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = outbox_settings(
            settings,
            f"http://127.0.0.1:{server.server_port}/",
            outbox_backoff_seconds=0.01,
            outbox_backoff_max_seconds=20.0,
        )
        before = utcnow()
        job = OutboxJob(config, clock=lambda: before)  # the backoff counts from this instant
        assert job.run_once(database, config)
        job.close()
    finally:
        server.shutdown()
        server.server_close()
    with database.read() as session:
        tried = session.scalars(select(OutboxDelivery).where(OutboxDelivery.attempts > 0))
        waits = [(d.next_attempt_at - before).total_seconds() for d in tried]
    assert waits and all(low <= wait <= high for wait in waits), waits


postgres = pytest.mark.skipif(
    not os.environ.get("SMSGATE_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="LISTEN/NOTIFY is PostgreSQL's",
)


@postgres
def test_an_idle_worker_wakes_when_an_event_commits(database_url, sms):  # type: ignore[no-untyped-def]
    from smsgate.config import Settings

    wakeup = Wakeup.for_settings(Settings(database_url=database_url))
    try:
        assert wakeup.listening
        assert wakeup.wait(0.2) is False  # nothing happened: the wait times out
        timer = threading.Timer(0.3, lambda: sms(VOLUNTEER_A, "TPS 012 01=1 02=2 03=3"))
        timer.start()
        assert wakeup.wait(60) is True  # woken by the commit, long before the minute is out
        timer.join()
        # A transaction that writes no event does not wake anyone.
        engine = create_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        assert wakeup.wait(0.2) is False
    finally:
        wakeup.close()


def test_listening_falls_back_to_polling(settings):  # type: ignore[no-untyped-def]
    assert listen_conninfo(replace(settings, database_url="sqlite:///x.db", listen_url=None)) is None
    assert listen_conninfo(replace(settings, listen_url="off")) is None
    assert (
        listen_conninfo(
            replace(
                settings,
                database_url="postgresql+psycopg://u:p@pgbouncer:6432/db",
                listen_url="postgresql+psycopg://u:p@db:5432/db",
            )
        )
        == "postgresql://u:p@db:5432/db"
    )
    unreachable = Wakeup("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    assert unreachable.listening is False
    assert unreachable.wait(0.05) is False  # slept, no exception
