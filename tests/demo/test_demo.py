"""``smsgate demo --exit`` on a small region: set-up, real server, simulated night, tally.

The demo always runs on its own SQLite file in the folder it is given, whatever the test
database is.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import func, select

from smsgate import demo
from smsgate.cli import main
from smsgate.db import Database
from smsgate.models import Contact, Region, Report, Station, StationResult
from smsgate.services import counters
from smsgate.services.tally import tally

KOTA_BANJARBARU = "63.72"


def _demo(folder: Path, *extra: str):  # type: ignore[no-untyped-def]
    args = ["demo", "--dir", str(folder), "--port", "0", "--region", KOTA_BANJARBARU, "--exit"]
    return CliRunner().invoke(main, [*args, "--messages", "60", "--rate", "300", *extra])


def test_demo_sets_up_serves_simulates_and_tallies(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = _demo(folder)

    assert result.exit_code == 0, result.output
    output = result.output
    assert "sent 60 of 60 messages" in output and "latency: p50" in output
    match = re.search(r"database: (\d+) reports stored for (\d+) accepted report messages \(OK\)", output)
    assert match and match.group(1) == match.group(2) and int(match.group(1)) > 0, output
    assert "63.72 Kota Banjarbaru" in output and "63 Kalimantan Selatan" in output
    assert "(1 process, log " in output and "1 processes" not in output and "workers" not in output
    url = re.search(r"server:\s+(http://127\.0\.0\.1:\d+)", output)
    assert url, output
    with pytest.raises(requests.ConnectionError):  # --exit stopped the server
        requests.get(url.group(1) + "/healthz", timeout=2)

    database = Database.from_url(f"sqlite:///{folder / 'smsgate.db'}")
    try:
        with database.read() as session:
            desas = session.scalar(select(func.count()).select_from(Region).where(Region.level == 4))
            stations = session.scalar(select(func.count(Station.id)))
            assert desas and 3 * desas < stations < 11 * desas
            assert session.scalar(select(func.count(StationResult.station_id))) == stations
            voters = list(session.scalars(select(Station.registered_voters)))
            assert min(voters) >= 150 and max(voters) <= 300
            # The "stations" counters are what the importer keeps: one per station, up the tree.
            assert counters.read(session, "6372")["stations"] == stations
            assert tally(session, "63")["stations"]["total"] == stations
            assert session.scalar(select(func.count(Report.id))) == int(match.group(1))
            volunteers = session.scalar(select(func.count(Contact.id)).where(Contact.role == "volunteer"))
            assert stations <= volunteers <= 2 * stations
    finally:
        database.dispose()


def test_demo_runs_again_in_the_same_folder(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    first = _demo(folder)
    second = _demo(folder)

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output

    def reported(output: str) -> list[str]:  # "reported/total" of each region: same plan, same stations
        return re.findall(r"^\s+63[.\d]* .*?(\d+/[\d,]+)", output, re.M)

    assert reported(second.output) == reported(first.output) and len(reported(first.output)) == 2
    database = Database.from_url(f"sqlite:///{folder / 'smsgate.db'}")
    try:
        with database.read() as session:
            stored = session.scalar(select(func.count(Report.id)))
    finally:
        database.dispose()
    assert f"database: {stored} reports stored" in second.output  # only the second run's reports


def test_the_steps_run_in_the_order_written():
    """The dashboard and the quick count show themselves around the night; serve comes last."""
    assert [step.name for step in demo.STEPS] == [
        "database", "regions", "candidates", "stations", "volunteers", "server", "dashboard",
        "quick count sample", "simulate", "tally", "dashboard link", "quick count", "serve",
    ]  # fmt: skip
