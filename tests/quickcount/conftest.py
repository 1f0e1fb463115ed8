"""Quick-count fixtures: a synthetic province on top of the test world."""

from __future__ import annotations

import pytest

from smsgate.importers import upsert_regions, upsert_stations

from .synthetic import build_frame


@pytest.fixture
def frame(database, world):  # type: ignore[no-untyped-def]
    frame = build_frame(11, kabupaten=6, kecamatan=3, desa=4, stations=(3, 8), province="62")
    with database.begin() as session:
        upsert_regions(session, frame.regions())
        upsert_stations(session, frame.station_rows())
    return frame
