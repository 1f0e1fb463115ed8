"""Sharded running totals per region (see ``RegionCounter``).

A station's result change becomes a set of deltas; ``add`` applies them to the station's
whole ancestry in one multi-row upsert, rows in a fixed order so two writers on the same
shard can never deadlock each other.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import upsert_for
from ..models import RegionCounter
from ..regions import ancestor_keys

SHARDS = 16


def add(session: Session, region_key: str, deltas: Mapping[str, int], shard: int | None = None) -> None:
    """Add ``deltas`` (counter name -> amount) to ``region_key`` and all its ancestors."""
    changes = {name: amount for name, amount in deltas.items() if amount}
    if not changes:
        return
    shard = random.randrange(SHARDS) if shard is None else shard
    rows = [
        {"region_key": key, "name": name, "shard": shard, "value": amount}
        for key in ancestor_keys(region_key)
        for name, amount in sorted(changes.items())
    ]
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
    if not rows:
        return
    statement = upsert_for(session)(RegionCounter).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["region_key", "name", "shard"],
        set_={"value": RegionCounter.value + statement.excluded.value},
    )
    session.execute(statement)


def read(session: Session, region_key: str) -> dict[str, int]:
    """Every counter of one region, shards added up."""
    rows = session.execute(
        select(RegionCounter.name, func.sum(RegionCounter.value))
        .where(RegionCounter.region_key == region_key)
        .group_by(RegionCounter.name)
    )
    return {name: int(total or 0) for name, total in rows}
