"""Ten volunteers at Mantuil TPS 012 (tests/support.py), as the campaign plans for every TPS."""

from __future__ import annotations

import pytest

from smsgate.importers import upsert_contacts

from ..support import MANTUIL

TEN = [f"+62811300000{n:02d}" for n in range(1, 11)]


@pytest.fixture
def ten(database, world) -> list[str]:  # type: ignore[no-untyped-def]
    """Ten volunteers assigned to Mantuil TPS 012; the first five speak Indonesian, the rest English."""
    with database.begin() as session:
        upsert_contacts(
            session,
            [
                {
                    "phone": phone,
                    "name": f"Relawan {i}",
                    "role": "volunteer",
                    "region_code": MANTUIL,
                    "tps": 12,
                    "lang": "id" if i < 5 else "en",
                }
                for i, phone in enumerate(TEN)
            ],
        )
    return TEN
