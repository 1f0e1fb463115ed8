"""Kemendagri region codes: dotted and undotted forms, levels and ancestors."""

from __future__ import annotations

import re

LEVEL_NAMES = {0: "country", 1: "province", 2: "kabupaten", 3: "kecamatan", 4: "desa"}
#: Digits per level in the undotted code: 63 / 6371 / 637101 / 6371011001.
KEY_LENGTHS = {1: 2, 2: 4, 3: 6, 4: 10}
_SEGMENTS = (2, 2, 2, 4)
_DOTTED = re.compile(r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$")


#: Provinces outside Western Indonesia Time (WIB, Asia/Jakarta), by their first two digits:
#: Bali, Nusa Tenggara, Kalimantan Selatan/Timur/Utara and Sulawesi keep WITA; Maluku and Papua WIT.
_WITA = {"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"}
_WIT = {"81", "82", "91", "92", "93", "94", "95", "96"}


def time_zone(code: str) -> str:
    """The IANA zone of the province a region lies in (``63.71`` -> ``Asia/Makassar``, WITA)."""
    province = to_key(code)[:2]
    if province in _WITA:
        return "Asia/Makassar"
    if province in _WIT:
        return "Asia/Jayapura"
    return "Asia/Jakarta"


def to_key(code: str) -> str:
    """``63.71.01`` -> ``637101``."""
    return code.replace(".", "")


def to_code(key: str) -> str:
    """``637101`` -> ``63.71.01``; raises ValueError for a length no level has."""
    if not key.isdigit() or len(key) not in KEY_LENGTHS.values():
        raise ValueError(f"not a region code: {key!r}")
    parts, pos = [], 0
    for width in _SEGMENTS:
        if pos >= len(key):
            break
        parts.append(key[pos : pos + width])
        pos += width
    return ".".join(parts)


def normalise_code(text: str) -> str:
    """Accept dotted or undotted input and return the dotted code, or raise ValueError."""
    text = text.strip()
    if _DOTTED.match(text):
        return text
    return to_code(text)


def level_of(code: str) -> int:
    return code.count(".") + 1 if code else 0


def ancestor_keys(key: str) -> list[str]:
    """Undotted keys of the country (``""``) and every level down to ``key`` itself."""
    return [""] + [key[:n] for n in KEY_LENGTHS.values() if n <= len(key)]


def station_id(desa_code: str, tps: int) -> str:
    return f"{to_key(desa_code)}{tps:03d}"


def desa_of_station(station: str) -> str:
    return to_code(station[:10])
