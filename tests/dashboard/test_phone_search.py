"""The message log's phone search: a number's start as people write it, or its last digits.

Through the dashboard on messages that arrived as signed webhooks (SQLite and PostgreSQL)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from smsgate.dashboard import phone_search
from smsgate.dashboard.phone_search import PhoneSearch
from smsgate.models import OutboundMessage

from ..support import VOLUNTEER_A, VOLUNTEER_B, VOLUNTEER_EN


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("0811-0000-0001", PhoneSearch("start", "+6281100000001")),
        ("0811 000", PhoneSearch("start", "+62811000")),
        ("+62 (811) 0000.0001", PhoneSearch("start", "+6281100000001")),
        ("6281100000001", PhoneSearch("start", "+6281100000001")),
        ("0511 325", PhoneSearch("start", "+62511325")),  # a leading 0 is the local trunk prefix
        ("00004", PhoneSearch("end", "00004")),  # ...but never followed by another 0: last digits
        ("6201", PhoneSearch("end", "6201")),  # too short for a country code: the last digits
        ("81100000001", PhoneSearch("end", "81100000001")),
        ("  ", None),
    ],
)
def test_what_a_coordinator_types_is_a_start_or_an_end(typed, meant):
    assert phone_search.parse(typed) == meant


@pytest.mark.parametrize("typed", ["0811abc", "+62+811", "0811*", "%1%"])
def test_anything_but_digits_is_refused(typed):
    with pytest.raises(phone_search.InvalidPhoneSearch):
        phone_search.parse(typed)


def _night(sms, database) -> None:  # type: ignore[no-untyped-def]
    """Three volunteers' reports, and an SMS sent to two of them (the outbound side of the log)."""
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=20").startswith("OK")
    assert sms(VOLUNTEER_B, "TPS 012 01=90 02=85 03=20").startswith("OK")
    assert sms(VOLUNTEER_EN, "TPS 001 01=50 02=60 03=10").startswith("OK")
    with database.begin() as session:
        for phone in (VOLUNTEER_A, VOLUNTEER_EN):
            session.add(OutboundMessage(to_number=phone, text=f"PESAN UNTUK {phone[-1]}", provider="android"))


def _search(admin, typed: str) -> str:  # type: ignore[no-untyped-def]
    response = admin.get("/dashboard/messages?phone=" + quote(typed))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_local_number_finds_its_messages_in_and_out(admin, sms, database):
    _night(sms, database)
    page = _search(admin, "0811-0000-0001")  # VOLUNTEER_A as written on a card
    assert "01=100" in page and "01=90" not in page and "01=50" not in page
    assert "PESAN UNTUK 1" in page and "PESAN UNTUK 4" not in page
    assert "01=100" in _search(admin, VOLUNTEER_A)  # the E.164 form, "+" and all
    beginning = _search(admin, "0811 0000 000")  # the start of the three volunteers' numbers
    assert "01=100" in beginning and "01=90" in beginning and "01=50" in beginning


def test_the_last_digits_find_the_numbers_ending_with_them(admin, sms, database):
    _night(sms, database)
    page = _search(admin, "00004")  # VOLUNTEER_EN ends with 00004
    assert "01=50" in page and "01=100" not in page and "01=90" not in page
    assert "PESAN UNTUK 4" in page and "PESAN UNTUK 1" not in page
    middle = _search(admin, "1100")  # from the middle of every number: not a search we offer
    assert "01=50" not in middle and "01=100" not in middle and "PESAN" not in middle


def test_a_phone_search_with_letters_is_refused_with_a_message(admin, sms, database):
    _night(sms, database)
    response = admin.get("/dashboard/messages?phone=0811abc")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "ketik angka saja" in page and "01=100" not in page
