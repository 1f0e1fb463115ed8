"""Finding the region a coordinator means, inside their scope.

A region is given by code (``63.71``) or by name (``BANJARMASIN``, with an optional level
hint: ``KEC BANJARMASIN SELATAN``, ``KOTA BANJARMASIN``). Names match ``Region.search_name``
exactly or with the kabupaten/kota prefix the Kemendagri names carry ("KOTA BANJARMASIN",
"KABUPATEN BANJAR", "KAB. BANJAR"), so ``REKAP BANJARMASIN`` finds Kota Banjarmasin.

What is revealed outside the scope: region codes and names are public (Kemendagri), so a
region that exists but lies outside the scope is answered ``out_of_scope`` rather than
"unknown", which tells the coordinator why and reveals nothing that is not public; no
number about it is ever read. When a name matches regions both inside and outside the
scope, only those inside count (the others are not even listed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

import grammar

from ..models import Contact, Region
from ..regions import LEVEL_NAMES, level_of, normalise_code, to_key
from .stations import Refusal, in_scope
from .tally import COUNTRY, RegionInfo

#: Level hints from the grammar -> region level.
HINT_LEVELS = {"provinsi": 1, "kabupaten": 2, "kota": 2, "kecamatan": 3, "desa": 4}
#: Prefixes a level-2 name carries in the region tree, per hint.
NAME_PREFIXES = {"kota": ("KOTA ", "KOTA ADM. "), "kabupaten": ("KABUPATEN ", "KAB. ", "KAB ")}
ALL_PREFIXES = ("", *NAME_PREFIXES["kota"], *NAME_PREFIXES["kabupaten"])
MAX_CHOICES = 4


@dataclass(frozen=True)
class Ambiguous:
    """Several regions in scope share the name: the reply lists them to choose from."""

    name: str
    regions: list[Region] = field(default_factory=list)


def info(region: Region) -> RegionInfo:
    return RegionInfo(code=region.code, name=region.name, level=LEVEL_NAMES[level_of(region.code)])


def scope_region(session: Session, contact: Contact) -> RegionInfo:
    """The coordinator's whole scope (the country when they have no region)."""
    if not contact.region_code:
        return COUNTRY
    region = session.get(Region, contact.region_code)
    return info(region) if region else RegionInfo(contact.region_code, contact.region_code, "region")


def resolve(
    session: Session, contact: Contact, ref: grammar.RegionRef | None
) -> RegionInfo | Ambiguous | Refusal:
    """The region ``ref`` names, checked against ``contact``'s scope."""
    if ref is None or (ref.code is None and not ref.name):
        return scope_region(session, contact)
    if ref.code is not None:
        try:
            region = session.get(Region, normalise_code(ref.code))
        except ValueError:
            region = None
        if region is None:
            return Refusal("unknown_region", {"region": ref.code})
        if not in_scope(contact, region.key):
            return Refusal("out_of_scope", {"target": f"{region.code} {region.name}"})
        return info(region)
    name = " ".join((ref.name or "").upper().split())
    matches = by_name(session, name, ref.level)
    if not matches:
        return Refusal("unknown_region", {"region": name})
    inside = [r for r in matches if in_scope(contact, r.key)]
    if not inside:
        return Refusal("out_of_scope", {"target": matches[0].name if len(matches) == 1 else name})
    if ref.level is None:
        inside = highest(inside)
    if len(inside) > 1:
        return Ambiguous(name, inside)
    return info(inside[0])


def by_name(session: Session, name: str, hint: str | None) -> list[Region]:
    """Regions whose name is ``name``, or ``name`` with a kabupaten/kota prefix.

    With a level hint only that level counts, and ``KOTA``/``KAB`` also pick the prefix
    (Kota Bogor vs Kabupaten Bogor). Without one, ``resolve`` keeps the highest level with a
    match in scope: desa names repeat across the country, so ``REKAP BANJARMASIN`` means the
    kota, and a desa of that name is ``REKAP DESA BANJARMASIN``.
    """
    prefixes = NAME_PREFIXES.get(hint or "", ALL_PREFIXES)
    query = select(Region).where(Region.search_name.in_([p + name for p in prefixes]))
    if hint in HINT_LEVELS:
        query = query.where(Region.level == HINT_LEVELS[hint])
    return list(session.scalars(query.order_by(Region.code)))


def highest(regions: list[Region]) -> list[Region]:
    top = min((r.level for r in regions), default=0)
    return [r for r in regions if r.level == top]


def choices_text(regions: list[Region]) -> str:
    shown = "; ".join(f"{r.code} {r.name}" for r in regions[:MAX_CHOICES])
    return shown + (f"; +{len(regions) - MAX_CHOICES}" if len(regions) > MAX_CHOICES else "")


def key_of(region: RegionInfo) -> str:
    return to_key(region.code)
