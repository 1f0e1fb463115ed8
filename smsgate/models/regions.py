"""The Kemendagri region tree, polling stations and the contest's candidates."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class Region(Base):
    """A province (level 1), kabupaten/kota (2), kecamatan (3) or desa/kelurahan (4).

    ``code`` is the dotted Kemendagri code. ``key`` is the same code without dots: it is the
    prefix of every station ID inside the region, which is what makes region filters an
    index range scan instead of a join up the tree.
    """

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(13), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    search_name: Mapped[str] = mapped_column(String(120), index=True)
    level: Mapped[int] = mapped_column(Integer)
    parent_code: Mapped[str | None] = mapped_column(
        String(16), ForeignKey("regions.code"), index=True, default=None
    )


class Station(Base):
    """A TPS. ``id`` is the KPU form: 10-digit desa code + 3-digit number."""

    __tablename__ = "stations"

    id: Mapped[str] = mapped_column(String(13), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(16), ForeignKey("regions.code"))
    tps: Mapped[int] = mapped_column(Integer)
    registered_voters: Mapped[int | None] = mapped_column(Integer, default=None)

    __table_args__ = (Index("ix_stations_region_tps", "region_code", "tps", unique=True),)


class Candidate(Base):
    __tablename__ = "candidates"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[str] = mapped_column(String(400), default="", server_default="")
    """Words a volunteer may write instead of the code (``AMIN ANIES``), upper case, space-separated."""
