"""Quick-count fixtures: a synthetic province on top of the test world."""

from __future__ import annotations

from dataclasses import replace

import pytest

from smsgate.config import Settings
from smsgate.importers import upsert_regions, upsert_stations

from .synthetic import build_frame
from .test_end_to_end import draw, report, sampled, votes_of


@pytest.fixture
def frame(database, world):  # type: ignore[no-untyped-def]
    frame = build_frame(11, kabupaten=6, kecamatan=3, desa=4, stations=(3, 8), province="62")
    with database.begin() as session:
        upsert_regions(session, frame.regions())
        upsert_stations(session, frame.station_rows())
    return frame


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The dashboard's card recomputed at every change of a sampled result (no minimum
    interval), by the refresh itself (no grace: no ``smsgate worker`` runs in these tests):
    these tests are about what the card says; tests/quickcount/test_stored_card.py and
    test_card_worker.py are about how often and where it is computed."""
    return replace(settings, quickcount_card_seconds=0.0, quickcount_card_grace_seconds=0.0)


@pytest.fixture
def night(frame, database, database_url, sms):  # type: ignore[no-untyped-def]
    """A drawn design and a helper that reports the next sampled station."""
    draw(database_url)
    truth = votes_of(frame)
    stations = sorted(sampled(database))
    sent: list[str] = []

    def next_report() -> str:
        station = stations[len(sent)]
        report(sms, station, truth[station])
        sent.append(station)
        return station

    return next_report
