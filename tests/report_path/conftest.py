"""Report-path fixtures: one report sent while a recorder of what the database really ran is on,
shared by the PostgreSQL and SQLite checks that the statement counters never undercount
(``test_driver.py``, ``test_driver_sqlite.py``); each brings its own recorder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pytest

from smsgate.inbound import InboundSMS
from smsgate.services.ingest import Ingest
from tests.report_path.test_round_trips import round_trips, with_default_flood_control
from tests.support import VOLUNTEER_A, VOLUNTEER_B, new_sid

REPORT = "TPS 012 01=123 02=98 03=150"


class Recorder(Protocol):
    """Records the statements the database runs while ``on``."""

    on: bool


@pytest.fixture
def send_one_recorded(world, database, settings) -> Callable[[Recorder], list[str]]:  # type: ignore[no-untyped-def]
    """``send(recorder)``: a first report at TPS 012 from one volunteer, unrecorded (it warms the
    caches and statements, so what is recorded is a served report's path), then the same report
    from a second volunteer with ``recorder`` on; returns what the statement counters listed
    for it (``round_trips``). Both replies must be OK."""

    def send(recorder: Recorder) -> list[str]:
        ingest = Ingest(database, with_default_flood_control(settings))
        warm = ingest.receive(InboundSMS("twilio", new_sid(), VOLUNTEER_B, REPORT))
        assert warm.text.startswith("OK TPS 012"), warm.text
        replies = []

        def report() -> None:
            recorder.on = True
            try:
                replies.append(ingest.receive(InboundSMS("twilio", new_sid(), VOLUNTEER_A, REPORT)))
            finally:
                recorder.on = False

        seen = round_trips(database.engine, report)
        assert replies[0].text.startswith("OK TPS 012"), replies[0].text
        return seen

    return send
