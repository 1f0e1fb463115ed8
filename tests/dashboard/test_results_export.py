"""The results CSV written by PostgreSQL's ``COPY`` is the one the ``csv`` module writes, byte for
byte: the same cells, the same quoting, the same apostrophe before anything a spreadsheet would
evaluate, the same ``updated_at`` text and CRLF line ends."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from smsgate.csv_cells import safe_row
from smsgate.dashboard import queries
from smsgate.models import Region, StationResult

from .test_pages import night

#: Desa names that exercise the formula rule and the quoting (real names never look like this).
NAMES = {
    "63.71.01.1001": "=1+2",  # a formula: gets an apostrophe
    "63.71.01.1002": '-Kelayan, "Ilir"',  # a formula, with a comma and quotes
    "63.71.02.1001": "+3.25",  # a plain number stays as it is
    "63.03.01.2001": "+6281234567890",  # an E.164 number stays as it is
    "64.72.01.1001": "",  # empty
}


def _python_csv(database, key: str, zone: tzinfo = UTC) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    with database.read() as session:
        for row in queries.results_csv_rows(session, key, zone):
            writer.writerow(safe_row(row))
    return buffer.getvalue().encode()


def _copied(database, key: str, zone: tzinfo = UTC) -> bytes | None:  # type: ignore[no-untyped-def]
    with database.read() as session:
        chunks = queries.results_csv_copy(session, key, zone)
        return None if chunks is None else b"".join(chunks)


def test_copy_writes_what_the_csv_module_writes(admin, sms, database):  # type: ignore[no-untyped-def]
    night(sms)
    with database.begin() as session:
        for code, name in NAMES.items():
            session.execute(update(Region).where(Region.code == code).values(name=name))
        first = session.scalars(select(StationResult).order_by(StationResult.station_id)).first()
        first.updated_at = datetime(2024, 2, 14, 11, 5, tzinfo=UTC)  # no microseconds: none written
    if _copied(database, "") is None:
        assert database.engine.dialect.name != "postgresql"
        pytest.skip("COPY is PostgreSQL's; SQLite exports through the csv module")
    makassar = ZoneInfo("Asia/Makassar")
    for key, zone in (("", UTC), ("63", makassar), ("637101", ZoneInfo("Asia/Jakarta"))):
        expected = _python_csv(database, key, zone)
        assert _copied(database, key, zone) == expected, key
    whole = _python_csv(database, "").decode()
    assert "'=1+2" in whole and '"\'-Kelayan, ""Ilir"""' in whole and ",+3.25," in whole
    assert ",+6281234567890," in whole and ",64.72.01.1001,," in whole
    assert "T11:05:00+00:00" in whole and "\r\n" in whole
    assert "T19:05:00+08:00" in _python_csv(database, "", makassar).decode()
    zone = ZoneInfo(admin.application.extensions["smsgate.settings"].timezone)
    response = admin.get("/dashboard/export/results.csv?region=63.71.01")
    assert response.data == _python_csv(database, "637101", zone)


def test_a_region_name_with_a_line_break_goes_through_the_csv_module(admin, sms, database):  # type: ignore[no-untyped-def]
    night(sms)
    with database.begin() as session:
        session.execute(update(Region).where(Region.code == "63.71.01.1001").values(name="Baris\nDua"))
    assert _copied(database, "") is None and _copied(database, "637101") is None
    if database.engine.dialect.name == "postgresql":  # another kabupaten's export never writes that name
        assert _copied(database, "6303") is not None
    zone = ZoneInfo(admin.application.extensions["smsgate.settings"].timezone)
    response = admin.get("/dashboard/export/results.csv?region=63.71.01")
    assert response.data == _python_csv(database, "637101", zone)
    assert '"Baris\nDua"' in response.get_data(as_text=True)
