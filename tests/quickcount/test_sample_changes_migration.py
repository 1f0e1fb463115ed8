"""Migration 2003 (the log of sampled stations' result changes and its triggers) goes down and
up on SQLite and PostgreSQL, and the triggers it creates log a change again afterwards."""

from __future__ import annotations

from alembic import command
from sqlalchemy import func, inspect, select

from smsgate.models import SampleResultChange, StationResult
from smsgate.schema import alembic_config
from tests.support import sample_of_one


def _tables(database) -> set[str]:  # type: ignore[no-untyped-def]
    with database.engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def _logs_a_sampled_change(database) -> bool:  # type: ignore[no-untyped-def]
    """A design of one station, then a new result for it and a change of that result."""
    station = "6371011001012"  # Mantuil TPS 012 of the test world
    with database.begin() as session:
        design = sample_of_one(session, station, active=False)
        result = session.get(StationResult, station) or StationResult(station_id=station)
        session.add(result)
        session.flush()
        result.report_count = 5
        session.flush()
        logged = session.scalar(
            select(func.count())
            .select_from(SampleResultChange)
            .where(SampleResultChange.design_id == design.id)
        )
    return bool(logged and logged >= 1)


def test_the_sample_changes_migration_goes_down_and_up(database, world):  # type: ignore[no-untyped-def]
    assert "sample_result_changes" in _tables(database)
    config = alembic_config(database.engine.url.render_as_string(hide_password=False))
    command.downgrade(config, "2002")  # takes 2003 (built on 2002 and 2101) down
    assert "sample_result_changes" not in _tables(database)
    command.upgrade(config, "heads")
    assert "sample_result_changes" in _tables(database)
    assert _logs_a_sampled_change(database)
