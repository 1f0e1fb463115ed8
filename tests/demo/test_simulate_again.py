"""Running ``smsgate simulate`` again at once against a server with flood control on: a run read
from the database sends only texts flood control lets through, keeps the counts stations already
have, and says what flood control held; a held message the plan did not expect exits 1."""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from smsgate import simulate
from smsgate.cli import main
from smsgate.config import Settings
from smsgate.db import Database
from smsgate.models import StationResult

from .conftest import AUTH_TOKEN


@pytest.fixture
def flood_url(database_url: str, database: Database, world) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The real app with flood control's duplicate rule at its default (600 s), the other
    limits off (the test world has only five volunteers, who text far more than ten a minute)."""
    from smsgate import create_app

    settings = Settings(
        database_url=database_url,
        twilio_auth_token=AUTH_TOKEN,
        flood_duplicate_seconds=600,
        flood_per_minute=0,
        flood_replies_per_hour=0,
    )
    app = create_app(settings, database=database)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["SMSGATE_PUBLIC_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    thread.join(10)


def _simulate(url: str, *extra: str, messages: int = 40):  # type: ignore[no-untyped-def]
    args = ["simulate", "--url", url, "--messages", str(messages), "--rate", "500", "--concurrency", "2"]
    return CliRunner().invoke(main, [*args, "--seed", "5", *extra], env={"TWILIO_AUTH_TOKEN": AUTH_TOKEN})


def test_a_second_run_at_once_sends_only_texts_flood_control_lets_through(
    flood_url: str, database_url: str, database: Database
) -> None:
    first = _simulate(flood_url, "--database", database_url)
    assert first.exit_code == 0, first.output
    assert first.output.rstrip().endswith("result: OK"), first.output

    roster = simulate.roster_from_database(database)
    with database.read() as session:
        current = [r for r in session.query(StationResult) if r.status in ("reported", "verified")]
        results = {r.station_id: r.votes for r in current}
    assert (
        results
        and {f"{desa.replace('.', '')}{tps:03d}": count.votes for (desa, tps), count in roster.counts.items()}
        == results
    )
    assert roster.latest  # every phone's latest handled text of the last ten minutes
    # The same seed again: without the database's latest texts the plan repeats some of them,
    # which flood control would hold; with them, only texts the plan itself repeats may be held.
    naive = simulate.plan(replace(roster, latest={}), 40, seed=5)
    assert any(simulate.normal_text(p.body) == roster.latest.get(p.phone) for p in naive)
    planned = simulate.plan(roster, 40, seed=5)
    for item in planned:
        if simulate.normal_text(item.body) == roster.latest.get(item.phone):
            assert item.repeat or item.category == "duplicate"

    again = _simulate(flood_url, "--database", database_url)
    assert again.exit_code == 0, again.output
    assert "flood control: held " in again.output and "result: OK" in again.output


def test_held_messages_the_plan_did_not_expect_fail_the_run(
    flood_url: str, database_url: str, database: Database, tmp_path: Path
) -> None:
    roster = simulate.roster_from_database(database)
    volunteers = tmp_path / "volunteers.csv"
    with volunteers.open("w", newline="") as stream:  # a CSV roster: no idea what was sent before
        writer = csv.writer(stream)
        writer.writerow(["phone", "name", "role", "region_code", "tps", "lang"])
        for v in roster.volunteers:
            writer.writerow([v.phone, "x", "volunteer", v.desa, v.tps or "", v.lang])
    options = ("--volunteers", str(volunteers), "--database", database_url)
    first = _simulate(flood_url, *options, messages=5)  # about one text per volunteer
    assert first.exit_code == 0, first.output
    assert "flood control: held 0 " in first.output

    again = _simulate(flood_url, *options, messages=5)  # the same texts again

    assert again.exit_code == 1, again.output
    held = int(again.output.split("flood control: held ", 1)[1].split(" ", 1)[0])
    assert held > 0
    last = again.output.rstrip().splitlines()[-1]
    assert last.startswith("result: FAILED: ") and "held or left unanswered by flood control" in last
