"""``smsgate simulate`` against a live server on the test database (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from smsgate import simulate
from smsgate.cli import main
from smsgate.db import Database
from smsgate.models import Contact, InboundMessage, Report, StationResult
from smsgate.services.tally import tally

from .conftest import AUTH_TOKEN


def _run(live_url: str, database: Database, messages: int = 120, **kw) -> simulate.Summary:  # type: ignore[no-untyped-def]
    roster = simulate.roster_from_database(database)
    return simulate.run(
        live_url,
        kw.pop("auth_token", AUTH_TOKEN),
        roster,
        messages=messages,
        rate=kw.pop("rate", 2000),
        concurrency=kw.pop("concurrency", 4),
        seed=kw.pop("seed", 7),
        database=database,
        **kw,
    )


def test_plan_is_deterministic_and_varied(database: Database, world) -> None:  # type: ignore[no-untyped-def]
    roster = simulate.roster_from_database(database)
    assert len(roster.volunteers) == 5 and roster.candidates == ("01", "02", "03")
    assert sorted(roster.stations["63.71.01.1001"]) == [1, 2, 12, 901]
    volunteers = [
        simulate.Volunteer(f"+62813{n:08d}", f"63.71.01.{1001 + n // 7}", None if n % 9 == 0 else n % 7 + 1)
        for n in range(300)
    ]
    roster = simulate.Roster(volunteers, {v.desa: dict.fromkeys(range(1, 8), 200) for v in volunteers})
    first = simulate.plan(roster, 600, seed=3, run_id="aaaaaaaa")
    again = simulate.plan(roster, 600, seed=3, run_id="bbbbbbbb")
    assert [(p.phone, p.body, p.after) for p in first] == [(p.phone, p.body, p.after) for p in again]
    assert {p.category for p in first} == set(simulate.MIX)
    forms = {p.form.removeprefix("resend:") for p in first if p.category in ("report", "correction")}
    assert forms == set(simulate.FORMS)
    assert {p.form for p in first if p.category == "mistake"} == set(simulate.MISTAKES)
    for item in first:
        if item.category == "duplicate":
            original = first[item.after]  # type: ignore[index]
            assert (original.sid, original.body, original.phone) == (item.sid, item.body, item.phone)
        elif item.category == "correction":
            assert first[item.after].phone == item.phone  # type: ignore[index]
    assert len({p.sid for p in first}) == len(first) - sum(p.category == "duplicate" for p in first)


def test_simulated_night_is_stored_once_and_tallied(live_url: str, database: Database) -> None:
    summary = _run(live_url, database, messages=150)

    assert summary.sent == summary.planned == 150
    assert summary.non_200 == 0 and not summary.errors
    assert summary.unexpected == [], summary.format()
    assert not summary.failed
    assert summary.duplicates > 0 and summary.duplicates_same_reply == summary.duplicates
    assert summary.accepted_report_messages > 50
    assert summary.reports_stored == summary.accepted_report_messages
    assert summary.messages_logged == summary.distinct_messages < summary.sent

    with database.read() as session:
        # Nothing but this run is in the test database: every logged message and report is ours.
        assert session.scalar(select(func.count(InboundMessage.id))) == summary.distinct_messages
        assert session.scalar(select(func.count(Report.id))) == summary.accepted_report_messages
        per_message = Counter(session.scalars(select(Report.inbound_message_id)))
        assert max(per_message.values()) == 1
        current = Counter(
            session.execute(
                select(Report.contact_id, Report.station_id).where(
                    Report.superseded_at.is_(None), Report.cancelled_at.is_(None)
                )
            ).all()
        )
        assert max(current.values()) == 1  # corrections superseded the earlier report

        results = [r for r in session.scalars(select(StationResult)) if r.status != "missing"]
        document = tally(session, None)
        assert document["stations"]["reported"] == len(results) > 0
        for code in ("01", "02", "03"):
            assert document["votes"][code] == sum((r.votes or {}).get(code, 0) for r in results)
        for result in results:
            report = session.get(Report, result.report_id)
            assert report is not None and report.current and report.votes == result.votes
        unknown = session.scalar(
            select(func.count(InboundMessage.id)).where(
                InboundMessage.contact_id.is_(None),
                InboundMessage.from_number.not_in(select(Contact.phone)),
            )
        )
        assert unknown == sum(summary.by_category.get("unregistered", Counter()).values())


def test_cli_with_a_volunteers_file(
    live_url: str, database_url: str, database: Database, tmp_path: Path
) -> None:
    roster = simulate.roster_from_database(database)
    path = tmp_path / "volunteers.csv"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["phone", "name", "role", "region_code", "tps", "lang"])
        for v in roster.volunteers:
            writer.writerow([v.phone.replace("+62", "0"), "x", "volunteer", v.desa, v.tps or "", v.lang])

    args = ["--messages", "60", "--rate", "1000", "--concurrency", "3"]
    result = CliRunner().invoke(
        main,
        ["simulate", "--url", live_url, *args, "--volunteers", str(path), "--database", database_url],
        env={"TWILIO_AUTH_TOKEN": AUTH_TOKEN},
    )

    assert result.exit_code == 0, result.output
    assert "sent 60 of 60 messages" in result.output
    assert "latency: p50" in result.output and "p99" in result.output
    assert "non-200: 0" in result.output
    stored = int(result.output.split("database: ", 1)[1].split(" reports stored", 1)[0])
    assert stored > 0 and "(OK)" in result.output
    with database.read() as session:
        assert session.scalar(select(func.count(Report.id))) == stored


def test_wrong_signing_key_is_refused_and_reported(live_url: str, database: Database) -> None:
    summary = _run(live_url, database, messages=10, auth_token="not-the-token")

    assert summary.statuses == Counter({403: 10})
    assert summary.failed
    assert summary.reports_stored == summary.messages_logged == 0
    assert "non-200: 10 (403: 10)" in summary.format()
