"""Reports and the per-station current result maintained from them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Computed, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime, utcnow
from .postgres_indexes import REVIEW_QUEUE_CONDITION


class Report(Base):
    """One volunteer's or coordinator's count for a station, as one SMS gave it.

    Reports are never deleted. A newer report from the same contact for the same station
    sets ``superseded_at`` on the older one; ``BATAL`` sets ``cancelled_at`` and records the
    message that cancelled it.
    """

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(12), unique=True)
    station_id: Mapped[str] = mapped_column(String(13), ForeignKey("stations.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    inbound_message_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"))
    votes: Mapped[dict[str, int]] = mapped_column(JSONType)
    valid: Mapped[int | None] = mapped_column(Integer, default=None)
    invalid: Mapped[int | None] = mapped_column(Integer, default=None)
    registered: Mapped[int | None] = mapped_column(Integer, default=None)
    by_coordinator: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"), default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    cancelled_by_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id"), default=None
    )
    #: Differs from the station's settled (``verified``) result while it counted; kept as it
    #: was when the report was superseded or cancelled. The volunteers' outvoted rates.
    outvoted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A reviewer looked at this dissenting report and let the majority stand.
    dissent_cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    dissent_cleared_by: Mapped[str | None] = mapped_column(String(200), default=None)

    __table_args__ = (
        # A station's reports in order. SQLite only: on PostgreSQL
        # ``ix_reports_station_prefix_created`` (``postgres_indexes.PREFIX_INDEXES``) has these
        # columns and serves ``=`` as well as a region's prefix (migration ``2022``).
        Index("ix_reports_station_created", "station_id", "created_at").ddl_if(dialect="sqlite"),
        Index("ix_reports_contact_created", "contact_id", "created_at"),
        # The dashboard's activity chart counts the reports of the last minutes.
        Index("ix_reports_created_at", "created_at"),
        # Outvoted reports by station prefix: the outlier volunteers of a region, without
        # reading the reports that agreed (partial: a few percent of all reports).
        Index(
            "ix_reports_outvoted_station",
            "station_id",
            postgresql_ops={"station_id": "varchar_pattern_ops"},
            postgresql_where=text("outvoted"),
            sqlite_where=text("outvoted"),
        ),
    )

    @property
    def current(self) -> bool:
        return self.superseded_at is None and self.cancelled_at is None


#: ``StationResult.review_at``'s expression: ``updated_at`` where the review queue's condition
#: holds, else NULL.
REVIEW_AT = f"CASE WHEN {REVIEW_QUEUE_CONDITION} THEN updated_at END"

#: A station with no counted report yet (its ``StationResult.status`` until one arrives).
MISSING = "missing"


class StationResult(Base):
    """The one result per station the tally counts, rewritten whenever its reports change.

    Keeping it on write is what lets a tally read one row per station (or, through
    ``RegionCounter``, a handful of rows per region) instead of every report.
    """

    __tablename__ = "station_results"

    station_id: Mapped[str] = mapped_column(String(13), ForeignKey("stations.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=MISSING)
    votes: Mapped[dict[str, int] | None] = mapped_column(JSONType, default=None)
    valid: Mapped[int | None] = mapped_column(Integer, default=None)
    invalid: Mapped[int | None] = mapped_column(Integer, default=None)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"), default=None)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Current reports whose votes differ from the counted reading (``services/consensus.py``).
    dissent: Mapped[int] = mapped_column(Integer, default=0)
    #: Of those, the ones no reviewer has cleared yet: the dissent list shows stations with any.
    dissent_open: Mapped[int] = mapped_column(Integer, default=0)
    #: The most votes a reviewer's decision could move in the totals: the farthest competing
    #: reading, or the whole counted result when it is flagged. Orders the review queue.
    impact: Mapped[int] = mapped_column(Integer, default=0)
    #: Some dissenting reading puts another candidate first (not "minor" dissent).
    contested: Mapped[bool] = mapped_column(Boolean, default=False)

    #: ``station_sequence`` of the station's latest event (0: none yet). Incremented under the
    #: row lock by every event of the station, so receivers can see a gap in a station's events.
    event_sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    #: ``updated_at`` while the station is in the review queue, else NULL: computed by the
    #: database, so it equals ``updated_at`` wherever the queue reads it. The queue's index
    #: orders by this instead of ``updated_at``, which every report changes: an indexed column
    #: that changes forbids PostgreSQL's heap-only (HOT) update, so every report rewrote each
    #: index entry of the station's row; now a report that leaves the station out of the queue
    #: changes no indexed column. Never written by the app.
    review_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), Computed(REVIEW_AT, persisted=True))

    __table_args__ = (
        # Stations with dissent nobody has cleared, by prefix: the dissent list of a region.
        Index(
            "ix_station_results_dissent_open",
            "station_id",
            postgresql_ops={"station_id": "varchar_pattern_ops"},
            postgresql_where=text("dissent_open > 0"),
            sqlite_where=text("dissent_open > 0"),
        ),
    )


class RegionCounter(Base):
    """A named running total for a region, split into shards.

    Every report for a station adds its delta to the counters of the station's province,
    kabupaten, kecamatan, desa and the country (``region_key`` ``""``). Writers pick a shard at
    random so thousands of concurrent reports do not queue on one hot row; readers add the
    shards up, which is a few dozen rows for any region.
    """

    __tablename__ = "region_counters"

    region_key: Mapped[str] = mapped_column(String(13), primary_key=True)
    name: Mapped[str] = mapped_column(String(24), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Flag(Base):
    """Something about a station a person should look at; never blocks a report.

    ``kind`` is stable (``over_capacity``, ``one_digit``, …) and ``reason`` is the sentence a
    coordinator reads. A flag stays until resolved, so the review queue is a query on
    ``resolved_at IS NULL``.
    """

    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[str] = mapped_column(String(13), ForeignKey("stations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(200), default=None)
