"""The fleet through its real boundaries: signed webhooks in, the worker's job out, fake devices
on localhost speaking each provider's send API (tests/fleet/fakes.py cites the shapes).

Routing (same number back), failover (disabled, silent, failing), priorities, shared rates
and daily caps, and two workers at once, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from smsgate.cli import main
from smsgate.db import Database
from smsgate.models.outbound import BULK, COORDINATOR_REPLY, STRANGER_REPLY, VOLUNTEER_REPLY
from smsgate.outgoing.sms_job import OutboundJob
from smsgate.services.outbound import enqueue
from tests.gateways.helpers import android_post, envelope, kannel_get
from tests.support import COORD_KOTA, VOLUNTEER_A, VOLUNTEER_B

from .fakes import fake_fleet
from .support import PHONE_A_ID, PHONE_B_ID, Clock, add_fake_devices, fleet_file, outbound

REPORT = "TPS 012 01=123 02=98 03=150"


@pytest.fixture(autouse=True)
def _phone_b_password(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FLEET_TEST_PHONE_B_PASSWORD", "secret-pw")


def ping(client, device: str):  # type: ignore[no-untyped-def]
    """``system:ping`` as the app sends it (docs-web docs/features/health.md, "Webhooks")."""
    beat = {
        "deviceId": device,
        "event": "system:ping",
        "id": "mjDoocQLCsOIDra_GthuI",
        "payload": {
            "health": {
                "checks": {
                    "battery:level": {
                        "description": "Battery level in percent",
                        "observedUnit": "percent",
                        "observedValue": 94,
                        "status": "pass",
                    }
                },
                "releaseId": 1,
                "status": "pass",
                "version": "1.0.0",
            }
        },
        "webhookId": "LreFUt-Z3sSq0JufY9uWB",
    }
    response = android_post(client, beat)
    assert response.status_code == 200, response.data
    return response


def run(job: OutboundJob, database: Database, clock: Clock, steps: int, every: float = 2.0) -> None:
    for _ in range(steps):
        job.run_once(database)
        clock.advance(every)


def test_a_reply_goes_back_through_the_phone_the_volunteer_texted(
    client, database, world, settings, tmp_path
):  # type: ignore[no-untyped-def]
    clock = Clock()
    with fake_fleet(clock) as fake:
        add_fake_devices(fake)
        config = replace(settings, gateways_file=fleet_file(tmp_path, fake))
        assert android_post(client, envelope(VOLUNTEER_A, REPORT, device=PHONE_B_ID)).status_code == 200
        assert android_post(client, envelope(VOLUNTEER_B, REPORT, device=PHONE_A_ID)).status_code == 200
        job = OutboundJob(config, clock=clock)
        assert job.run_once(database) == 2
    assert {(s.device, s.to) for s in fake.sent} == {("phone-b", VOLUNTEER_A), ("phone-a", VOLUNTEER_B)}
    rows = {r.to_number: r for r in outbound(database)}
    a = rows[VOLUNTEER_A]
    assert (a.status, a.device, a.via, a.route, a.priority) == (
        "sent",
        "phone-b",
        PHONE_B_ID,
        None,
        VOLUNTEER_REPLY,
    )
    assert a.provider_message_id == f"smsgate-{a.id}"  # the id the phone's API accepted


def test_broadcasts_and_reminders_come_from_the_modem_each_volunteer_last_texted(  # type: ignore[no-untyped-def]
    client, database, world, settings, tmp_path
):
    from smsgate.services.reminders import remind

    clock = Clock()
    with fake_fleet(clock) as fake:
        add_fake_devices(fake)
        config = replace(settings, gateways_file=fleet_file(tmp_path, fake))
        assert kannel_get(client, VOLUNTEER_A, "BANTUAN", smsc="modem2").status_code == 200
        with database.begin() as session:
            queued = remind(session, config, "63.71.01.1001", clock())
        assert queued >= 2  # VOLUNTEER_A texted through modem2; VOLUNTEER_B never texted
        job = OutboundJob(config, clock=clock)
        run(job, database, clock, 6)
    sent = {s.to: s for s in fake.sent}
    assert sent[VOLUNTEER_A].device == "modem-2"
    # Never texted: the default provider (twilio), from the fleet's Twilio number.
    assert sent[VOLUNTEER_B].device == "twilio-1"
    assert {r.priority for r in outbound(database)} == {BULK}


def test_an_operator_disables_a_phone_and_its_replies_fail_over(client, database, world, settings, tmp_path):  # type: ignore[no-untyped-def]
    clock = Clock()
    with fake_fleet(clock) as fake:
        add_fake_devices(fake)
        path = fleet_file(tmp_path, fake)
        config = replace(settings, gateways_file=path)
        env = {"SMSGATE_DATABASE_URL": settings.database_url, "SMSGATE_GATEWAYS": path}
        result = CliRunner().invoke(main, ["gateways", "disable", "phone-b"], env=env)
        assert result.exit_code == 0, result.output
        assert "phone-b disabled" in result.output
        assert android_post(client, envelope(VOLUNTEER_A, REPORT, device=PHONE_B_ID)).status_code == 200
        OutboundJob(config, clock=clock).run_once(database)
        [row] = outbound(database)
        assert (row.device, row.route) == ("phone-a", "failover from phone-b: disabled by an operator")
        assert CliRunner().invoke(main, ["gateways", "enable", "phone-b"], env=env).exit_code == 0
        assert android_post(client, envelope(VOLUNTEER_B, REPORT, device=PHONE_B_ID)).status_code == 200
        clock.advance(2)
        OutboundJob(config, clock=clock).run_once(database)
    assert [s.device for s in fake.sent] == ["phone-a", "phone-b"]
    unknown = CliRunner().invoke(main, ["gateways", "disable", "phone-z"], env=env)
    assert unknown.exit_code != 0 and "no device named phone-z" in unknown.output


def test_a_phone_without_heartbeat_is_down_until_it_pings(client, database, world, settings, tmp_path):  # type: ignore[no-untyped-def]
    clock = Clock()
    with fake_fleet(clock) as fake:
        add_fake_devices(fake)
        config = replace(settings, gateways_file=fleet_file(tmp_path, fake, phone_a="heartbeat = true"))
        job = OutboundJob(config, clock=clock)
        assert android_post(client, envelope(VOLUNTEER_A, REPORT, device=PHONE_A_ID)).status_code == 200
        job.run_once(database)
        first = outbound(database)[-1]
        assert (first.device, first.route) == ("phone-b", "failover from phone-a: no heartbeat yet")

        ping(client, PHONE_A_ID)  # Settings > Ping switched on in the app
        clock.advance(2)
        assert android_post(client, envelope(VOLUNTEER_B, REPORT, device=PHONE_A_ID)).status_code == 200
        job.run_once(database)
        second = outbound(database)[-1]
        assert (second.device, second.route) == ("phone-a", None)

        clock.advance(300)  # no ping for five minutes: silent, so down
        assert android_post(client, envelope(VOLUNTEER_A, "CEK", device=PHONE_A_ID)).status_code == 200
        job.run_once(database)
        third = outbound(database)[-1]
        assert third.device == "phone-b" and third.route.startswith("failover from phone-a: silent for ")


def test_a_failing_phone_is_taken_out_and_its_replies_retried_elsewhere(
    client, database, world, settings, tmp_path
):  # type: ignore[no-untyped-def]
    clock = Clock()
    with fake_fleet(clock) as fake:
        add_fake_devices(fake)
        fake.devices["phone-b"].failing = 500
        config = replace(settings, gateways_file=fleet_file(tmp_path, fake), outbound_backoff_seconds=1)
        job = OutboundJob(config, clock=clock, jitter=lambda: 1.0)
        for phone in (VOLUNTEER_A, VOLUNTEER_B, COORD_KOTA):
            text = "REKAP" if phone == COORD_KOTA else REPORT
            assert android_post(client, envelope(phone, text, device=PHONE_B_ID)).status_code == 200
        for _ in range(5):  # phone-b's rate allows one try per two seconds
            job.run_once(database)
            clock.advance(2)
        assert len(fake.refused) == 3  # three failures in a row take phone-b out of rotation
        run(job, database, clock, 6)
    rows = outbound(database)
    assert {r.status for r in rows} == {"sent"}
    assert len(fake.sent) == 3 and "phone-b" not in {s.device for s in fake.sent}
    assert all(r.route.startswith("failover from phone-b: failing: HTTP 500") for r in rows)


def test_volunteers_go_before_coordinators_and_strangers_on_the_same_phone(  # type: ignore[no-untyped-def]
    client, database, world, settings, tmp_path
):
    clock = Clock()
    with fake_fleet(clock) as fake:
        add_fake_devices(fake)
        config = replace(settings, gateways_file=fleet_file(tmp_path, fake))
        strangers = [f"+628199900{i:04d}" for i in range(6)]
        for phone in strangers:  # a flood of unknown numbers first...
            assert android_post(client, envelope(phone, "halo", device=PHONE_A_ID)).status_code == 200
        assert android_post(client, envelope(COORD_KOTA, "REKAP", device=PHONE_A_ID)).status_code == 200
        assert android_post(client, envelope(VOLUNTEER_A, REPORT, device=PHONE_A_ID)).status_code == 200
        job = OutboundJob(config, clock=clock)
        run(job, database, clock, 8)  # phone-a sends one SMS per two seconds
    order = [s.to for s in fake.sent]
    assert order[:2] == [VOLUNTEER_A, COORD_KOTA]  # ...yet the volunteer is answered first
    assert sorted(order[2:]) == strangers
    priorities = {r.to_number: r.priority for r in outbound(database)}
    assert priorities[VOLUNTEER_A] == VOLUNTEER_REPLY and priorities[COORD_KOTA] == COORDINATOR_REPLY
    assert {priorities[p] for p in strangers} == {STRANGER_REPLY}


def _replies_to_phone_a(database: Database, clock: Clock, count: int) -> None:
    """``count`` volunteer replies queued for phone-a, to ``count`` different numbers."""
    with database.begin() as session:
        for i in range(count):
            enqueue(
                session,
                to=f"+6281100{i:06d}",
                text=f"msg {i}",
                provider="android",
                via=PHONE_A_ID,
                kind="reply",
                priority=VOLUNTEER_REPLY,
                now=clock(),
            )


def test_rates_and_daily_caps_hold_across_two_workers(database, settings, tmp_path):  # type: ignore[no-untyped-def]
    clock = Clock()
    with fake_fleet(clock) as fake:
        add_fake_devices(fake)
        path = fleet_file(tmp_path, fake, phone_a="daily_cap = 3", failover="same-provider")
        config = replace(settings, gateways_file=path)
        _replies_to_phone_a(database, clock, 6)
        workers = [OutboundJob(config, clock=clock) for _ in "ab"]
        for _ in range(12):  # both workers poll every second: phone-a still sends one per two seconds
            for worker in workers:
                worker.run_once(database)
            clock.advance(1)
    on_a = [s for s in fake.sent if s.device == "phone-a"]
    assert len(on_a) == 3  # its daily cap
    gaps = [(b.accepted_at - a.accepted_at).total_seconds() for a, b in itertools.pairwise(on_a)]
    assert all(gap >= 2 for gap in gaps), gaps
    rest = [r for r in outbound(database) if r.device == "phone-b"]
    assert len(rest) == 3 and all(r.route == "failover from phone-a: daily cap 3 reached" for r in rest)
    # The next day the cap starts again.
    clock.advance(24 * 3600)
    with database.begin() as session:
        enqueue(
            session,
            to="+6281100999999",
            text="tomorrow",
            provider="android",
            via=PHONE_A_ID,
            kind="reply",
            now=clock(),
        )
    workers[0].run_once(database)
    assert outbound(database)[-1].device == "phone-a"


def test_policy_decides_what_a_row_without_a_usable_device_does(database, settings, tmp_path):  # type: ignore[no-untyped-def]
    clock = Clock()
    with fake_fleet(clock) as fake:
        add_fake_devices(fake)
        config = replace(settings, gateways_file=fleet_file(tmp_path, fake, failover="same-provider"))
        with database.begin() as session:
            enqueue(session, to="+6281100000077", text="x", provider="gammu", kind="broadcast", now=clock())
        OutboundJob(config, clock=clock).run_once(database)
        [row] = outbound(database)
        assert (row.status, row.last_error) == (
            "failed",
            "no sender configured for provider gammu; set SMSGATE_GAMMU_INJECT",
        )

        waiting = replace(settings, gateways_file=fleet_file(tmp_path, fake, failover="none"))
        with database.begin() as session:
            enqueue(
                session,
                to="+6281100000078",
                text="y",
                provider="android",
                via=PHONE_B_ID,
                kind="reply",
                now=clock(),
            )
        fake.devices["phone-b"].failing = 503
        job = OutboundJob(waiting, clock=clock, jitter=lambda: 0.0)
        from smsgate.outgoing import devices

        with database.begin() as session:
            devices.set_disabled(session, "phone-b", True, clock())
        run(job, database, clock, 3)
        assert outbound(database)[-1].status == "queued"  # "none": it waits for its own phone
    assert fake.sent == []


def test_two_workers_send_each_row_once_through_its_own_device(database_url, database, settings, tmp_path):  # type: ignore[no-untyped-def]
    clock = Clock()
    homes = [
        ("android", PHONE_A_ID, "phone-a"),
        ("android", PHONE_B_ID, "phone-b"),
        ("kannel", "modem1", "modem-1"),
    ]
    with fake_fleet(clock) as fake:
        add_fake_devices(fake)
        path = Path(fleet_file(tmp_path, fake))
        fast = path.read_text().replace("rate = 0.5", "rate = 1000").replace("rate = 1\n", "rate = 1000\n")
        path.write_text(fast)
        config = replace(settings, gateways_file=str(path))
        with database.begin() as session:
            for i in range(90):
                provider, via, _ = homes[i % 3]
                enqueue(
                    session,
                    to=f"+62812{i:07d}",
                    text=f"m{i}",
                    provider=provider,
                    via=via,
                    kind="reply",
                    now=clock(),
                )
        errors: list[BaseException] = []

        def work() -> None:
            own = Database.from_url(database_url)
            try:
                job = OutboundJob(config, clock=clock, batch=7)
                while job.run_once(own):
                    pass
                job.close()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                own.dispose()

        clock.advance(5)
        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert not errors
    texts = [s.text for s in fake.sent]
    assert len(texts) == 90 and len(set(texts)) == 90
    by_text = {s.text: s.device for s in fake.sent}
    assert all(by_text[f"m{i}"] == homes[i % 3][2] for i in range(90))
    assert {r.status for r in outbound(database)} == {"sent"}


def test_a_phone_keeps_its_rate_when_workers_come_by_less_often_than_it_earns_a_send(  # type: ignore[no-untyped-def]
    database, settings, tmp_path
):
    """0.35 SMS/s polled every 2 s: a bucket that dropped the fraction above one SMS sent one
    every 4 s (50 in 200 s); the phone must send at its rate (70), never two at once."""
    clock = Clock()
    with fake_fleet(clock) as fake:
        fake.add("phone-a", "android", PHONE_A_ID)
        path = tmp_path / "one-phone.toml"
        path.write_text(
            f"""
[[device]]
name = "phone-a"
provider = "android"
url = "{fake.url}/android/phone-a/message"
user = "sms"
password = "secret-pw"
device_id = "{PHONE_A_ID}"
rate = 0.35
""",
            encoding="utf-8",
        )
        config = replace(settings, gateways_file=str(path))
        _replies_to_phone_a(database, clock, 100)
        workers = [OutboundJob(config, clock=clock) for _ in "ab"]
        for step in range(100):  # 200 s, the two workers taking turns every 2 s
            workers[step % 2].run_once(database)
            clock.advance(2)
    accepted = [s.accepted_at for s in fake.sent]
    assert len(accepted) == 70  # 1 at the start + 0.35 x 198 s
    assert len(set(accepted)) == len(accepted)  # one per visit at most: no bursts
