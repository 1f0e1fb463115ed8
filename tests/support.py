"""Test helpers: a small real region tree, people, and a signed Twilio client."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from html import unescape

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from smsgate.importers import upsert_contacts, upsert_regions, upsert_stations
from smsgate.models import Candidate, Contact, SampleDesign, SampleStation, SampleStratum, utcnow
from smsgate.services import pins
from smsgate.sms import is_single_gsm7_sms

PUBLIC_URL = "https://smsgate.example.org"
AUTH_TOKEN = "test-auth-token"

REGIONS = [
    ("63", "Kalimantan Selatan"),
    ("63.71", "Kota Banjarmasin"),
    ("63.71.01", "Banjarmasin Selatan"),
    ("63.71.01.1001", "Mantuil"),
    ("63.71.01.1002", "Kelayan Selatan"),
    ("63.71.02", "Banjarmasin Timur"),
    ("63.71.02.1001", "Kuripan"),
    ("63.03", "Kabupaten Banjar"),
    ("63.03.01", "Aluh-Aluh"),
    ("63.03.01.2001", "Aluh Aluh Besar"),
    ("64", "Kalimantan Timur"),
    ("64.72", "Kota Samarinda"),
    ("64.72.01", "Palaran"),
    ("64.72.01.1001", "Rawa Makmur"),
]

MANTUIL = "63.71.01.1001"
KELAYAN = "63.71.01.1002"
KURIPAN = "63.71.02.1001"
ALUH = "63.03.01.2001"
RAWA = "64.72.01.1001"

# Volunteers: phone -> (desa, tps or None, lang)
VOLUNTEER_A = "+6281100000001"  # Mantuil TPS 012
VOLUNTEER_B = "+6281100000002"  # Mantuil TPS 012
VOLUNTEER_C = "+6281100000003"  # Mantuil, not assigned to one TPS
VOLUNTEER_EN = "+6281100000004"  # Kelayan Selatan TPS 001, English
VOLUNTEER_ALUH = "+6281100000005"  # Aluh Aluh Besar TPS 001
COORD_KOTA = "+6281200000001"  # coordinator for Kota Banjarmasin
COORD_NATIONAL = "+6281200000002"  # coordinator for everything
COORD_KALTIM = "+6281200000003"  # coordinator for Kalimantan Timur, English
UNKNOWN = "+6281999999999"
COORD_PIN = "4821"  # every coordinator's PIN in the test world
WITH_PIN = f" PIN {COORD_PIN}"


@dataclass(frozen=True)
class World:
    candidates: tuple[str, ...] = ("01", "02", "03")


def build_world(session: Session) -> World:
    upsert_regions(session, REGIONS)
    for code, name in (("01", "Anies-Muhaimin"), ("02", "Prabowo-Gibran"), ("03", "Ganjar-Mahfud")):
        session.add(Candidate(code=code, name=name))
    stations = [(MANTUIL, tps, 400) for tps in (1, 2, 12, 901)]
    stations += [(KELAYAN, 1, 200), (KELAYAN, 2, None), (KURIPAN, 1, 300), (ALUH, 1, 220), (RAWA, 1, 280)]
    upsert_stations(session, stations)
    people = [
        (VOLUNTEER_A, "Ani", "volunteer", MANTUIL, 12, "id"),
        (VOLUNTEER_B, "Budi", "volunteer", MANTUIL, 12, "id"),
        (VOLUNTEER_C, "Citra", "volunteer", MANTUIL, None, "id"),
        (VOLUNTEER_EN, "Dewi", "volunteer", KELAYAN, 1, "en"),
        (VOLUNTEER_ALUH, "Eko", "volunteer", ALUH, 1, "id"),
        (COORD_KOTA, "Fajar", "coordinator", "63.71", None, "id"),
        (COORD_NATIONAL, "Gita", "coordinator", None, None, "id"),
        (COORD_KALTIM, "Hadi", "coordinator", "64", None, "en"),
    ]
    upsert_contacts(
        session,
        [
            {"phone": p, "name": n, "role": r, "region_code": c, "tps": t, "lang": lang}
            for p, n, r, c, t, lang in people
        ],
        give_pins=False,
    )
    for contact in session.scalars(select(Contact).where(Contact.role == "coordinator")):
        pins.set_pin(session, contact, COORD_PIN, utcnow())
    return World()


_sids = itertools.count(1)
_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.S)


def sample_of_one(session: Session, station_id: str, *, active: bool) -> SampleDesign:
    """A quick-count design whose one stratum samples one station, flushed: what the tests of
    the sampled stations' change log set up before they change that station's result."""
    design = SampleDesign(strata_level="import", size=1, active=active)
    session.add(design)
    session.flush()
    stratum = SampleStratum(design_id=design.id, code="x", population=1, sample_size=1)
    session.add(stratum)
    session.flush()
    session.add(SampleStation(design_id=design.id, station_id=station_id, stratum_id=stratum.id))
    session.flush()
    return design


def new_sid() -> str:
    return f"SM{next(_sids):032x}"


def twilio_signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def twiml_text(body: str) -> str | None:
    match = _MESSAGE.search(body)
    return unescape(match.group(1)) if match else None


class TwilioSender:
    """Posts signed Twilio inbound webhooks through the Flask test client."""

    path = "/webhooks/twilio"

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.last_response = None

    def form(self, phone: str, body: str, sid: str | None = None) -> dict[str, str]:
        return {
            "MessageSid": sid or new_sid(),
            "SmsSid": sid or "",
            "AccountSid": "AC00000000000000000000000000000000",
            "From": phone,
            "To": "+15005550006",
            "Body": body,
            "NumMedia": "0",
        }

    def post(self, params: dict[str, str], signature: str | None = None, query: str = ""):  # type: ignore[no-untyped-def]
        url = PUBLIC_URL + self.path + (f"?{query}" if query else "")
        headers = (
            {}
            if signature == ""
            else {"X-Twilio-Signature": signature if signature is not None else twilio_signature(url, params)}
        )
        response = self.client.post(self.path + (f"?{query}" if query else ""), data=params, headers=headers)
        self.last_response = response
        return response

    def __call__(self, phone: str, body: str, sid: str | None = None) -> str | None:
        response = self.post(self.form(phone, body, sid))
        assert response.status_code == 200, response.data
        reply = twiml_text(response.get_data(as_text=True))
        # Every reply is one SMS of GSM-7 characters, whatever was typed.
        assert reply is None or is_single_gsm7_sms(reply), f"reply does not fit one SMS: {reply!r}"
        return reply


class Statements:
    """Every SQL statement any engine runs while active: what a request or a read really asks
    the database (the tests that count statements or forbid a table use it)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(statement)

    def __enter__(self) -> Statements:
        event.listen(Engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self)

    def reading(self, table: str) -> list[str]:
        """The statements that read ``table`` (``FROM`` or ``JOIN`` it)."""
        return [s for s in self.seen if f"FROM {table}" in s or f"JOIN {table}" in s]

    def lowered(self) -> list[str]:
        """The statements in lower case with their whitespace collapsed, for phrase matching."""
        return [" ".join(s.split()).lower() for s in self.seen]
