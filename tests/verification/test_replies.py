"""Every reply of incidents, the coordinators' queries (totals, missing, status) and registration is one
GSM-7 SMS in both languages, with realistic long values."""

from __future__ import annotations

import pytest

from smsgate.replies import CATALOGUE, render
from smsgate.sms import is_single_gsm7_sms

PARAMS = {
    "place": "Kelurahan Kelayan Selatan Barat TPS 901",
    "ref": "K7Q2XM",
    "region": "Kabupaten Hulu Sungai Selatan",
    "reported": 812345,
    "total": 823220,
    "votes": "01=12345678 (25.1%) 02=23456789 (58.8%) 03=3456789 (16.1%)",
    "disputed": 12345,
    "flagged": 23456,
    "missing": 10875,
    "stations": "6371011001001 6371011001002 6371011001003 6371011001004 6371011001005 ..",
    "station": "6371011001012",
    "status": "terverifikasi",
    "extras": " TS=12",
    "count": 10,
    "kinds": "landslide,late,multi_desa,one_digit,over_999,over_capacity,totals_mismatch",
    "command": "REKAP",
    "choices": "63.71.01.1001 Mantuil; 63.71.02.1002 Mantuil; 63.03.01.2001 Mantuil; "
    "63.03.02.2002 Mantuil; +3",
    "name": "Siti Aminah binti Abdullah",
    "code": "ABCDEFGHJKMN",
    "left": 4,
    "until": "14/02 15:35",
}
KEYS = [
    "incident_recorded", "totals", "missing_list", "missing_none", "station_status",
    "station_status_missing", "status_flags", "status_incidents", "unknown_region", "ambiguous_region",
    "registered", "registered_coordinator", "register_already", "register_inactive", "register_bad_phone",
    "invite_unknown", "invite_expired", "invite_used_up", "register_locked",
]  # fmt: skip


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("lang", ["id", "en"])
def test_reply_is_one_gsm7_sms(key, lang):
    assert key in CATALOGUE
    text = render(key, lang, **PARAMS)
    assert is_single_gsm7_sms(text), text
    first = text.split()[0].rstrip(":")
    assert first in ("OK", "GAGAL" if lang == "id" else "ERROR") or key.startswith("status_"), text


@pytest.mark.parametrize("key", [k for k in KEYS if not k.startswith(("totals", "missing_list", "status_"))])
def test_short_replies_are_not_cut(key):
    for lang in ("id", "en"):
        assert not render(key, lang, **PARAMS).endswith(".."), key
