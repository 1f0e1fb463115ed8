"""The per-station numbers published by the election authority (KPU), for comparison."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime, utcnow


class OfficialResult(Base):
    """One station's official count, as the last ``smsgate import official`` gave it.

    ``votes`` has the same shape as ``StationResult.votes`` (candidate code -> votes) so the
    discrepancy query compares the two rows per candidate in SQL. ``invalid`` is None when the
    authority did not publish it; it is then not compared.
    """

    __tablename__ = "official_results"

    station_id: Mapped[str] = mapped_column(String(13), ForeignKey("stations.id"), primary_key=True)
    votes: Mapped[dict[str, int]] = mapped_column(JSONType)
    valid: Mapped[int] = mapped_column(Integer)
    invalid: Mapped[int | None] = mapped_column(Integer, default=None)
    source: Mapped[str] = mapped_column(String(200), default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
