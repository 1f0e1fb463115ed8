"""The gateways file, the fleet of one, and ``smsgate gateways status|plan`` as an operator runs them."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from click.testing import CliRunner

from smsgate.cli import main
from smsgate.config import Settings
from smsgate.outgoing.fleet import FleetError, load_fleet
from smsgate.outgoing.plan import NIGHTS, Assumptions, plan, profile, volunteer_lags
from smsgate.outgoing.sms_job import OutboundJob
from tests.gateways.helpers import android_post, envelope

from .fakes import fake_fleet
from .support import PHONE_A_ID, PHONE_B_ID, Clock, add_fake_devices, fleet_file

EXAMPLE = """
[fleet]
failover = "any"
silent_after_seconds = 120

[[device]]
name = "hp-banjarmasin-1"
provider = "android"
number = "+6281251000001"
url = "http://192.168.1.21:8080/message"
user = "sms"
password_env = "HP1_PASSWORD"
device_id = "ffffffffceb0b1db0000018e937c815b"
rate = 0.35
daily_cap = 3000
heartbeat = true

[[device]]
name = "hp-cloud-2"
provider = "android"
url = "https://api.sms-gate.app/3rdparty/v1/messages"
user = "ABCDEF"
password = "cloud-pw"
device_id = "dev_abc123"

[[device]]
name = "modem-1"
provider = "kannel"
number = "+6281251000010"
url = "http://127.0.0.1:13013/cgi-bin/sendsms"
user = "smsgate"
password = "kannel-pw"
smsc = "modem1"
rate = 0.5
"""


def test_the_readme_example_loads(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "gateways.toml"
    path.write_text(EXAMPLE)
    fleet = load_fleet(Settings(gateways_file=str(path)), {"HP1_PASSWORD": "pw1"})
    phone, cloud, modem = fleet.devices
    assert (phone.identifier, phone.rate, phone.daily_cap, phone.heartbeat) == (
        "ffffffffceb0b1db0000018e937c815b",
        0.35,
        3000,
        True,
    )
    assert phone.options["password"] == "pw1" and phone.options["api"] == "local"
    assert cloud.options["api"] == "cloud" and cloud.rate == 0.35  # the default phone rate
    assert (modem.identifier, modem.rate) == ("modem1", 0.5)
    assert fleet.home("android", "dev_abc123") is cloud
    assert fleet.home("android", "someone-else") is None  # no catch-all phone: it fails over
    sender = cloud.sender(Settings())
    assert sender.device_id == "dev_abc123"  # type: ignore[attr-defined]  # the cloud needs deviceId


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('provider = "kannel"', 'provider = "nokia"'), "provider must be one of"),
        (
            lambda t: t.replace('smsc = "modem1"', 'smsc = "modem1"\nsmsc_id = "x"'),
            "unknown key(s) for kannel",
        ),
        (lambda t: t.replace('name = "modem-1"', 'name = "hp-cloud-2"'), "device names must be unique"),
        (lambda t: t.replace('device_id = "dev_abc123"', ""), "a cloud device needs device_id"),
        (lambda t: t.replace("rate = 0.5", "rate = 0"), "rate must be above 0"),
        (lambda t: t.replace('failover = "any"', 'failover = "random"'), "failover must be one of"),
        (lambda t: t.replace('"HP1_PASSWORD"', '"NOT_SET_ANYWHERE"'), "NOT_SET_ANYWHERE, which is not set"),
        (lambda t: t.replace("[fleet]", "[fleet\n"), "not valid TOML"),
    ],
)
def test_a_wrong_gateways_file_says_what_is_wrong(tmp_path, change, message):  # type: ignore[no-untyped-def]
    path = tmp_path / "gateways.toml"
    path.write_text(change(EXAMPLE))
    with pytest.raises(FleetError) as error:
        load_fleet(Settings(gateways_file=str(path)), {"HP1_PASSWORD": "pw1"})
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_the_single_device_variables_are_a_fleet_of_one():  # type: ignore[no-untyped-def]
    env = {
        "SMSGATE_ANDROID_URL": "http://192.168.1.21:8080/message",
        "SMSGATE_KANNEL_SENDSMS_URL": "http://127.0.0.1:13013/cgi-bin/sendsms",
        "SMSGATE_SEND_RATE": "android=0.5",
    }
    fleet = load_fleet(Settings.from_env(env), {})
    assert [(d.name, d.provider, d.identifier, d.rate) for d in fleet.devices] == [
        ("android", "android", "", 0.5),
        ("kannel", "kannel", "", 5.0),
    ]
    assert fleet.home("android", "any-phone-at-all").name == "android"  # type: ignore[union-attr]


def test_gateways_status_shows_each_device(client, database, world, settings, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FLEET_TEST_PHONE_B_PASSWORD", "secret-pw")
    clock = Clock()
    with fake_fleet(clock) as fake:
        add_fake_devices(fake)
        path = fleet_file(tmp_path, fake, phone_a="heartbeat = true")
        report = envelope("+6281100000001", "TPS 012 01=1 02=2 03=3", device=PHONE_B_ID)
        report["payload"]["receivedAt"] = datetime.now(UTC).isoformat()  # the phone's clock, as sent
        assert android_post(client, report).status_code == 200
        fake.devices["phone-b"].failing = 500
        OutboundJob(replace(settings, gateways_file=path), clock=clock).run_once(database)
    env = {"SMSGATE_DATABASE_URL": settings.database_url, "SMSGATE_GATEWAYS": path}
    text = CliRunner().invoke(main, ["gateways", "status"], env=env)
    assert text.exit_code == 0, text.output
    assert "phone-b [android +6281300000002]: up, last seen" in text.output
    assert "15 min: 1 received, 0 sent; queue 1, oldest" in text.output
    assert "failures: 1 (1 in a row)" in text.output and "HTTP 500" in text.output
    assert "phone-a [android +6281300000000]: down (no heartbeat yet), last seen never" in text.output
    assert "WARNING phone-a: down: no heartbeat yet" in text.output
    figures = json.loads(CliRunner().invoke(main, ["gateways", "status", "--json"], env=env).output)
    b = next(d for d in figures["devices"] if d["name"] == "phone-b")
    assert (b["received_15m"], b["queued"], b["failures"], b["state"]) == (1, 1, 1, "up")
    assert figures["threshold_seconds"] == 120
    assert PHONE_A_ID  # phone-a's identifier is what its pings must carry


def test_plan_prints_the_model_and_agrees_with_the_library():  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["gateways", "plan", "--volunteers", "130000", "--hours", "3"])
    assert result.exit_code == 0, result.output
    expected = plan(Assumptions(volunteers=130_000, hours=3))
    assert f"Android phones only (0.35 SMS/s each): {expected.android_phones} ->" in result.output
    assert f"GSM modems only (0.5 SMS/s each): {expected.modems} ->" in result.output
    assert "130,000 volunteers x 1.2 texts" in result.output
    assert "at the top of the night x2.5 = 37.92 texts/s" in result.output
    # The fixed seeds make the answer the same every time; the model needs fewer phones than one
    # pool sized at the top of the night plus a spare (121), since the top lasts minutes and a
    # reply may wait up to a minute, and more than the median of its nights needs (96, 66).
    assert (expected.android_phones, expected.modems) == (97, 67)
    assert "in every one of 5 nights drawn from the profile, i.e. in the worst of them" in result.output
    data = json.loads(
        CliRunner()
        .invoke(main, ["gateways", "plan", "--volunteers", "1000", "--hours", "1", "--json", "--modems", "2"])
        .output
    )
    assert data["assumptions"]["peak_factor"] == 2.5 and data["android_phones"] >= 2
    assert data["mixed"]["modems"] == 2 and data["mixed"]["android_phones"] < data["android_phones"]


def test_the_plans_count_meets_the_target_and_one_fewer_does_not():  # type: ignore[no-untyped-def]
    a = Assumptions(volunteers=4000, hours=0.5, headroom=0.0)
    result = plan(a)
    chosen, fewer = result.checks["phones only"]
    assert chosen.phones == result.android_phones and fewer.phones == result.android_phones - 1
    assert chosen.p95 < 60 <= fewer.p95
    assert result.check(result.android_phones, 0).p95 == chosen.p95  # deterministic nights


def night_p95s(result, phones: int, modems: int) -> list[float]:  # type: ignore[no-untyped-def]
    """The volunteers' p95 on each of the plan's nights, computed night by night (no early stop)."""
    a = result.assumptions
    rates = np.array([a.android_rate] * phones + [a.modem_rate] * modems, dtype=np.float64)
    return [
        float(np.percentile(volunteer_lags(a, night, rates, a.spare, seed), 95))
        for seed, night in enumerate(result.nights)
    ]


@pytest.mark.parametrize("modems", [0, 4])
def test_the_plans_count_meets_the_target_on_every_night_and_one_fewer_misses_on_one(modems):  # type: ignore[no-untyped-def]
    # The bench's night (seed 7, 20,000 texts, headroom 0): the median of five nights said 26 phones
    # next to 4 modems, the night needed 27. Sizing for the worst night must not leave any night over.
    a = Assumptions(volunteers=15_880, hours=1, headroom=0.0)
    result = plan(a)
    phones = result.phones_with(modems) if modems else result.android_phones
    assert len(result.nights) == NIGHTS == 5
    chosen = night_p95s(result, phones, modems)
    assert max(chosen) < a.target_seconds, chosen
    assert result.checks[f"phones next to {modems} modems" if modems else "phones only"][0].p95 == max(chosen)
    fewer = night_p95s(result, phones - 1, modems)
    assert max(fewer) >= a.target_seconds, fewer
    if modems == 4:
        # What the bench's night needed; the median of these nights alone would have let 26 through.
        assert phones == 27
        assert sorted(fewer)[len(fewer) // 2] < a.target_seconds, fewer


def test_a_random_spread_needs_more_phones_than_an_even_one():  # type: ignore[no-untyped-def]
    even = plan(Assumptions(volunteers=4000, hours=0.5, headroom=0.0))
    scattered = plan(Assumptions(volunteers=4000, hours=0.5, headroom=0.0, spread="random"))
    assert scattered.android_phones > even.android_phones


def test_the_busiest_minute_follows_the_peak_factor_and_an_impossible_one_is_refused():  # type: ignore[no-untyped-def]
    shape = profile(1.0, 3.0)
    assert shape.burst == pytest.approx(1 / 10)  # 2 x 0.9 + 0.1 x 12 = 3
    assert shape.busiest(60) == pytest.approx(3.0, rel=0.02)
    assert profile(1.0, 1.5).busiest(60) == pytest.approx(1.5, rel=0.02)
    result = CliRunner().invoke(
        main, ["gateways", "plan", "--volunteers", "100", "--hours", "0.25", "--peak-factor", "4"]
    )
    assert result.exit_code == 1
    assert "a peak factor of 4 is more than a 0.25 h night can have (at most 3.00" in result.output


def test_the_worker_refuses_a_wrong_gateways_file_with_its_reason(settings, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "gateways.toml"
    path.write_text('[[device]]\nname = "hp-1"\nprovider = "android"\n')
    env = {"SMSGATE_DATABASE_URL": settings.database_url, "SMSGATE_GATEWAYS": str(path)}
    result = CliRunner().invoke(main, ["worker", "--once"], env=env)
    assert result.exit_code == 1
    assert f"{path}: device 'hp-1': missing url" in result.output
