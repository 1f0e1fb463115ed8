"""A fleet file for the fake devices, a settable clock, and queue inspection."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from smsgate.config import Settings
from smsgate.db import Database
from smsgate.models import OutboundMessage

from .fakes import FakeFleet

PHONE_A_ID = "ffffffffceb0b1db0000018e937c815b"  # the deviceId tests/gateways' envelopes carry
PHONE_B_ID = "ffffffffceb0b1db00000192672f2204"


class Clock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def fleet_file(
    tmp_path: Path, fake: FakeFleet, *, failover: str = "any", extra: str = "", phone_a: str = ""
) -> str:
    """Two Android phones (local API), two Kannel modems, one Twilio number, as the README shows."""
    text = f"""
[fleet]
failover = "{failover}"
silent_after_seconds = 120
failures_to_down = 3
down_for_seconds = 60

[[device]]
name = "phone-a"
provider = "android"
number = "+6281300000000"
url = "{fake.url}/android/phone-a/message"
user = "sms"
password = "secret-pw"
device_id = "{PHONE_A_ID}"
rate = 0.5
{phone_a}

[[device]]
name = "phone-b"
provider = "android"
number = "+6281300000002"
url = "{fake.url}/android/phone-b/message"
user = "sms"
password_env = "FLEET_TEST_PHONE_B_PASSWORD"
device_id = "{PHONE_B_ID}"
rate = 0.5

[[device]]
name = "modem-1"
provider = "kannel"
number = "+6281300000010"
url = "{fake.url}/cgi-bin/sendsms"
user = "sms"
password = "secret-pw"
smsc = "modem1"
rate = 0.5

[[device]]
name = "modem-2"
provider = "kannel"
number = "+6281300000011"
url = "{fake.url}/cgi-bin/sendsms"
user = "sms"
password = "secret-pw"
smsc = "modem2"
rate = 0.5

[[device]]
name = "twilio-1"
provider = "twilio"
number = "+15005550006"
account_sid = "AC00000000000000000000000000000000"
auth_token = "test-auth-token"
base_url = "{fake.url}"
rate = 1
{extra}
"""
    path = tmp_path / "gateways.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def heartbeat_fleet_settings(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``settings`` with the fleet of ``fleet_file``, phone-a sending heartbeats (none has come
    yet), every device's URL unreachable: for the pages and counts, which send nothing."""
    monkeypatch.setenv("FLEET_TEST_PHONE_B_PASSWORD", "secret-pw")
    unreachable = FakeFleet(clock=lambda: None)  # type: ignore[arg-type, return-value]
    unreachable.url = "http://127.0.0.1:9"
    return replace(settings, gateways_file=fleet_file(tmp_path, unreachable, phone_a="heartbeat = true"))


def add_fake_devices(fake: FakeFleet) -> None:
    fake.add("phone-a", "android", PHONE_A_ID)
    fake.add("phone-b", "android", PHONE_B_ID)
    fake.add("modem-1", "kannel", "modem1")
    fake.add("modem-2", "kannel", "modem2")
    fake.add("twilio-1", "twilio", "+15005550006")


def outbound(database: Database) -> list[OutboundMessage]:
    with database.read() as session:
        return list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))
