"""``SMSGATE_KANNEL_REPLY=queue``: a modem's replies wait in the queue (priorities, its rate) and go
back through the same modem with Kannel's ``smsc``, instead of riding in the HTTP response."""

from __future__ import annotations

from dataclasses import replace

import pytest

from smsgate.config import Settings
from smsgate.outgoing.sms_job import OutboundJob
from tests.gateways.helpers import kannel_get
from tests.support import VOLUNTEER_A

from .fakes import fake_fleet
from .support import Clock, add_fake_devices, fleet_file, outbound


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock):  # type: ignore[no-untyped-def]
    with fake_fleet(clock) as running:
        add_fake_devices(running)
        yield running


@pytest.fixture
def settings(settings, tmp_path, fake, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FLEET_TEST_PHONE_B_PASSWORD", "secret-pw")
    return replace(settings, kannel_reply="queue", gateways_file=fleet_file(tmp_path, fake))


def test_a_queued_kannel_reply_goes_back_through_the_same_modem(
    client, database, world, settings, fake, clock
):  # type: ignore[no-untyped-def]
    response = kannel_get(client, VOLUNTEER_A, "TPS 012 01=123 02=98 03=150", smsc="modem2")
    assert response.status_code == 200 and response.get_data(as_text=True) == ""  # nothing inline
    OutboundJob(settings, clock=clock).run_once(database)
    [sent] = fake.sent
    assert (sent.device, sent.to) == ("modem-2", VOLUNTEER_A) and sent.text.startswith("OK")
    [row] = outbound(database)
    assert (row.provider, row.via, row.device, row.status) == ("kannel", "modem2", "modem-2", "sent")


def test_the_setting_is_checked_at_start_up():  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="SMSGATE_KANNEL_REPLY must be one of inline, queue"):
        Settings.from_env({"SMSGATE_KANNEL_REPLY": "later"})
