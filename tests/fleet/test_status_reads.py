"""The fleet's traffic figures (gateways page, ``smsgate gateways status``, ``/metrics``) read
the last 15 minutes' messages and one row per device, never the night's inbound messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from smsgate.models import InboundMessage, utcnow
from smsgate.outgoing.fleet import load_fleet
from smsgate.outgoing.fleet_status import fleet_status
from tests.gateways.helpers import android_post, envelope
from tests.support import Statements

from .support import PHONE_B_ID, heartbeat_fleet_settings


@pytest.fixture
def settings(settings, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    return heartbeat_fleet_settings(settings, tmp_path, monkeypatch)


def test_received_counts_the_window_and_last_seen_reaches_back_without_grouping_the_night(
    app, client, database
):  # type: ignore[no-untyped-def]
    for n, text in enumerate(("TPS 012 01=1 02=2 03=3", "TPS 013 01=1 02=2 03=3")):
        sms = envelope(f"+628110000000{n + 1}", text, f"envelope-{n}", device=PHONE_B_ID)
        assert android_post(client, sms).status_code == 200
    an_hour_ago = utcnow() - timedelta(hours=1)
    with database.begin() as session:  # one an hour ago (out of the window), one a minute ago
        assert session.scalar(select(func.count(InboundMessage.id))) == 2
        first = session.scalar(select(func.min(InboundMessage.id)))
        for message, moment in ((first, an_hour_ago), (first + 1, utcnow() - timedelta(minutes=1))):
            session.execute(
                update(InboundMessage).where(InboundMessage.id == message).values(received_at=moment)
            )
    fleet = load_fleet(app.extensions["smsgate.settings"])
    with Statements() as statements:
        with database.read() as session:
            phone_b = {d.name: d for d in fleet_status(session, fleet, utcnow()).devices}["phone-b"]
        with database.begin() as session:
            session.execute(update(InboundMessage).values(received_at=an_hour_ago))
        with database.read() as session:
            silent = {d.name: d for d in fleet_status(session, fleet, utcnow()).devices}["phone-b"]
    sent = statements.lowered()
    assert phone_b.received_15m == 1
    assert silent.received_15m == 0
    assert silent.last_seen is not None and abs((silent.last_seen - an_hour_ago).total_seconds()) < 1
    grouped = [s for s in sent if "from inbound_messages" in s and "group by" in s]
    assert grouped and all("from inbound_messages where inbound_messages.received_at >" in s for s in grouped)
