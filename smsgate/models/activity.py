"""Reports per minute per region, kept for the dashboard's activity chart.

The chart shows the last 24 hours. Grouping that many reports on every refresh (millions at
national scale, every 5 s per open dashboard) would cost more than everything else on the
page, so minutes that are over — "settled", see ``dashboard.activity`` — are counted once and
stored here, shared by every app process. A refresh then reads at most one row per minute and
counts only the reports of the last few minutes.

The rows are a cache, not a record: they are filled by the dashboard when it first needs them
(never on the SMS path), can be deleted at any time, and are rebuilt from ``reports``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime


class ActivityMinute(Base):
    """How many reports for stations in ``region_key`` were stored during ``minute``.

    Only minutes with reports have a row; ``ActivityMark`` says up to when the zeros are real.
    """

    __tablename__ = "activity_minutes"

    region_key: Mapped[str] = mapped_column(String(13), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    reports: Mapped[int] = mapped_column(Integer)


class ActivityMark(Base):
    """Every minute of ``region_key`` before ``settled_until`` is counted in ``ActivityMinute``."""

    __tablename__ = "activity_marks"

    region_key: Mapped[str] = mapped_column(String(13), primary_key=True)
    settled_until: Mapped[datetime] = mapped_column(UTCDateTime())
