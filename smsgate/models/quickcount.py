"""Quick-count sample designs (the strata with their sizes and the stations drawn) and the
previous election's results per station."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime, utcnow


class SampleDesign(Base):
    """One stratified sample of stations. ``active`` marks the design the quick count uses
    (at most one: drawing or importing a new design deactivates the others).

    ``strata_level`` is ``province``, ``kabkota`` or ``kecamatan`` for a drawn design and
    ``import`` for one read from a file; ``region_code`` the region it was drawn in (None for
    the whole frame); ``seed`` the random seed (None for an imported design).
    """

    __tablename__ = "sample_designs"

    id: Mapped[int] = mapped_column(primary_key=True)
    strata_level: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str | None] = mapped_column(String(16), default=None)
    seed: Mapped[int | None] = mapped_column(Integer, default=None)
    size: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SampleStratum(Base):
    """A stratum of a design: ``population`` stations (N_h), ``sample_size`` drawn (n_h) and
    the registered voters of the stratum (stations without a figure count with the stratum
    mean) used for the allocation and for the coverage warnings."""

    __tablename__ = "sample_strata"

    id: Mapped[int] = mapped_column(primary_key=True)
    design_id: Mapped[int] = mapped_column(ForeignKey("sample_designs.id"))
    code: Mapped[str] = mapped_column(String(32))
    population: Mapped[int] = mapped_column(Integer)
    sample_size: Mapped[int] = mapped_column(Integer)
    registered: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (UniqueConstraint("design_id", "code", name="uq_sample_strata_design_code"),)


class SampleStation(Base):
    """A station drawn into a design, and its stratum."""

    __tablename__ = "sample_stations"

    design_id: Mapped[int] = mapped_column(ForeignKey("sample_designs.id"), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(13), ForeignKey("stations.id"), primary_key=True)
    stratum_id: Mapped[int] = mapped_column(ForeignKey("sample_strata.id"), index=True)

    #: Looked up by station alone when a station's result changes (``SampleResultChange``).
    __table_args__ = (Index("ix_sample_stations_station_id", "station_id"),)


class SampleResultChange(Base):
    """One change of a sampled station's result: written by the database itself (triggers on
    ``station_results``, migration ``2003``) in the transaction that changes the result.

    The quick count's cached estimate is still valid while the number of these rows for its
    design is what it was when the estimate was computed. Counting them reads a few rows per
    sampled report, where comparing the sampled stations' results read the whole sample
    (2,000 stations) on every dashboard refresh. A count, not the highest id: ids are handed
    out before commit, so a later commit can bring a lower one; every commit raises the count.
    """

    __tablename__ = "sample_result_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    design_id: Mapped[int] = mapped_column(ForeignKey("sample_designs.id"), index=True)
    station_id: Mapped[str] = mapped_column(String(13))


class PreviousResult(Base):
    """One station's result in the previous election (``smsgate import previous``), for the
    quick count's non-response checks and adjusted estimate.

    ``votes`` maps current candidate codes to the previous votes of the side each stands for
    (the analyst's mapping); ``valid`` is all valid votes of the previous contest at the
    station. ``desa`` (the station ID's first 10 digits) finds a desa's stations quickly, for
    the desa-level covariate. ``imported_at`` tells caches that the data changed.
    """

    __tablename__ = "previous_results"

    station_id: Mapped[str] = mapped_column(String(13), ForeignKey("stations.id"), primary_key=True)
    desa: Mapped[str] = mapped_column(String(10), index=True)
    votes: Mapped[dict[str, int]] = mapped_column(JSONType)
    valid: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class QuickcountCard(Base):
    """The dashboard's quick-count card of one region, computed by one process for all of them
    (``quickcount.stored``): every worker process used to recompute the national card (about a
    second of CPU) after every change of a sampled station's result.

    ``fingerprint`` is the ``quickcount.service.fingerprint`` the card was computed at (its
    first part, ``changes``, the count of logged sampled-result changes it reflects);
    ``document`` holds the estimate, the night's history and each history point's input digest
    (so the next computation reuses the points whose inputs did not change); ``computed_at``
    when it was stored. ``claim`` and ``claimed_until`` are the lease of the process computing
    the next one (others serve this one meanwhile; a lease left by a killed process expires).
    ``computations`` counts the stored computations, for tests and operators.
    """

    __tablename__ = "quickcount_cards"

    design_id: Mapped[int] = mapped_column(ForeignKey("sample_designs.id"), primary_key=True)
    region_key: Mapped[str] = mapped_column(String(13), primary_key=True)
    fingerprint: Mapped[str | None] = mapped_column(String(200), default=None)
    changes: Mapped[int | None] = mapped_column(Integer, default=None)
    document: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    claim: Mapped[str | None] = mapped_column(String(32), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    computations: Mapped[int] = mapped_column(Integer, default=0)
