"""Sharded running totals per region (see ``RegionCounter``).

A station's result change becomes a set of deltas; ``add`` applies them to the station's
whole ancestry in one multi-row upsert, rows in a fixed order so two writers on the same
shard can never deadlock each other.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any, cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from .. import driver
from ..models import RegionCounter
from ..regions import ancestor_keys

SHARDS = 16
#: ``session.info`` key, present while the transaction holds its counter rows back (``defer``).
_DEFERRED = "smsgate.counters.deferred"


def add(session: Session, region_key: str, deltas: Mapping[str, int], shard: int | None = None) -> None:
    """Add ``deltas`` (counter name -> amount) to ``region_key`` and all its ancestors (at once,
    or with the transaction's other writes when it called ``defer``)."""
    changes = {name: amount for name, amount in deltas.items() if amount}
    if not changes:
        return
    shard = random.randrange(SHARDS) if shard is None else shard
    rows = [
        {"region_key": key, "name": name, "shard": shard, "value": amount}
        for key in ancestor_keys(region_key)
        for name, amount in sorted(changes.items())
    ]
    deferred = session.info.get(_DEFERRED)
    if deferred is not None:
        deferred.append(rows)
    else:
        _upsert_add(session, rows)


def defer(session: Session) -> None:
    """Hold the rows ``add`` writes in this transaction back until ``take_deferred``: the
    ingest writes them in the statement that writes its other changes (``pending_writes``),
    one round trip less for a report that moves the counters."""
    session.info[_DEFERRED] = []


def take_deferred(session: Session) -> list[dict[str, object]]:
    """The rows held back since ``defer`` (``add`` writes at once again from now on), in the
    order they were added; a counter added twice is one row with the sum, at its first place,
    so the rows still lock in the order separate statements would have and one statement can
    write them all (PostgreSQL refuses to upsert one row twice in a statement)."""
    held: list[list[dict[str, object]]] = session.info.pop(_DEFERRED, None) or []
    if len(held) == 1:
        return held[0]
    merged: dict[tuple[object, object, object], dict[str, object]] = {}
    for row in (row for rows in held for row in rows):
        key = (row["region_key"], row["name"], row["shard"])
        if key in merged:
            merged[key]["value"] = cast(int, merged[key]["value"]) + cast(int, row["value"])
        else:
            merged[key] = dict(row)
    return list(merged.values())


def write(session: Session, rows: list[dict[str, object]]) -> None:
    """Write rows ``take_deferred`` returned (in one statement on PostgreSQL), flushing nothing
    else: the caller writes the transaction's other changes itself."""
    with session.no_autoflush:
        _upsert_add(session, rows)


def add_many(session: Session, rows: Iterable[tuple[str, str, int]]) -> None:
    """Bulk form for imports: (region_key, name, amount) rows added to shard 0, ancestors included."""
    totals: dict[tuple[str, str], int] = {}
    for region_key, name, amount in rows:
        for key in ancestor_keys(region_key):
            totals[(key, name)] = totals.get((key, name), 0) + amount
    batch = [
        {"region_key": key, "name": name, "shard": 0, "value": value}
        for (key, name), value in sorted(totals.items())
        if value
    ]
    for start in range(0, len(batch), 2000):
        _upsert_add(session, batch[start : start + 2000])


def add_exact(session: Session, rows: Iterable[tuple[str, str, int]]) -> None:
    """Add amounts to exactly these (region_key, name) counters, shard 0, no ancestors (repairs)."""
    batch = [
        {"region_key": key, "name": name, "shard": 0, "value": amount}
        for key, name, amount in sorted(rows)
        if amount
    ]
    for start in range(0, len(batch), 2000):
        _upsert_add(session, batch[start : start + 2000])


def _upsert_add(session: Session, rows: list[dict[str, object]]) -> None:
    """Every row added in one statement whose SQL never changes, so SQLAlchemy compiles it once
    per process (a multi-row ``VALUES`` with the rows inline is compiled anew for every distinct
    row count, and that was most of a report's CPU).

    PostgreSQL: the rows travel as four arrays (``unnest``), in their order, so two writers on
    the same shard still lock them in the same order. SQLite: one ``executemany`` of the
    single-row upsert (no network, so nothing to save by folding the rows)."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        columns = {name: [row[name] for row in rows] for name in ("region_key", "name", "shard", "value")}
        session.execute(_POSTGRESQL_ADD, columns)
    else:
        # The autoflush ``session.execute`` would do (none while the session is flushing, or
        # when the caller turned it off): the same call.
        session._autoflush()
        _SQLITE_DRIVER_ADD.executemany(session.connection(), rows)


_POSTGRESQL_ADD = text(
    "INSERT INTO region_counters (region_key, name, shard, value)"
    " SELECT k, n, s, v FROM unnest(CAST(:region_key AS varchar[]), CAST(:name AS varchar[]),"
    " CAST(:shard AS integer[]), CAST(:value AS integer[])) WITH ORDINALITY AS t(k, n, s, v, i)"
    " ORDER BY i"
    " ON CONFLICT (region_key, name, shard) DO UPDATE SET value = region_counters.value + excluded.value"
)


def _sqlite_add() -> Any:
    table = cast(Table, RegionCounter.__table__)
    statement = sqlite.insert(table)
    return statement.on_conflict_do_update(
        index_elements=["region_key", "name", "shard"],
        set_={"value": table.c.value + statement.excluded.value},
    )


_SQLITE_ADD = _sqlite_add()
#: ... run on the driver's cursor (``smsgate.driver``): the report path adds about six rows.
_SQLITE_DRIVER_ADD = driver.Statement(_SQLITE_ADD)


def read(session: Session, region_key: str) -> dict[str, int]:
    """Every counter of one region, shards added up."""
    rows = session.execute(
        select(RegionCounter.name, func.sum(RegionCounter.value))
        .where(RegionCounter.region_key == region_key)
        .group_by(RegionCounter.name)
    )
    return {name: int(total or 0) for name, total in rows}
