"""PostgreSQL only: concurrent reports keep the region counters equal to a recomputation."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

import grammar
from smsgate.importers import upsert_contacts
from smsgate.inbound import InboundSMS
from smsgate.models import Contact, InboundMessage, Report, Station, StationResult, utcnow
from smsgate.services import recount, reports
from smsgate.services.ingest import Ingest
from smsgate.services.tally import tally

from ..support import COORD_KOTA, KURIPAN, MANTUIL, VOLUNTEER_A, VOLUNTEER_B, WITH_PIN

pytestmark = pytest.mark.skipif(
    not os.environ.get("SMSGATE_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="needs PostgreSQL (SMSGATE_TEST_DATABASE_URL)",
)

THREADS, MESSAGES = 8, 24
MANTUIL_STATIONS = (1, 2, 12, 901)


def volunteers(database, count: int):  # type: ignore[no-untyped-def]
    """``count`` volunteers in Mantuil (any of its TPS) and ``count`` in Kuripan (its one TPS)."""
    rows = [
        {"phone": f"+628130000{i:04d}", "name": f"M{i}", "role": "volunteer", "region_code": MANTUIL}
        for i in range(count)
    ] + [
        {
            "phone": f"+628140000{i:04d}",
            "name": f"K{i}",
            "role": "volunteer",
            "region_code": KURIPAN,
            "tps": 1,
        }
        for i in range(count)
    ]
    with database.begin() as session:
        upsert_contacts(session, [r | {"tps": r.get("tps"), "lang": "id"} for r in rows])
    return [r["phone"] for r in rows]


def test_many_writers_on_the_same_stations_keep_counters_exact(world, database, settings) -> None:  # type: ignore[no-untyped-def]
    phones = volunteers(database, 12)
    ingest = Ingest(database, settings)

    def writer(worker: int) -> list[str]:
        rng = random.Random(worker)
        outcomes = []
        for i in range(MESSAGES):
            votes = f"01={rng.choice((100, 101))} 02={rng.choice((50, 60))} 03=7"
            phone = rng.choice(phones) if i % 6 else COORD_KOTA
            if phone == COORD_KOTA:
                text = f"TPS 637101100{rng.choice((1001, 1012))} {votes}{WITH_PIN}"  # coordinators: PIN
            elif phone.startswith("+62813"):
                text = f"TPS {rng.choice(MANTUIL_STATIONS):03d} {votes} TS={rng.choice((0, 3))}"
            else:
                text = votes
            sms = InboundSMS("test", f"w{worker}-{i}", phone, text)
            outcomes.append(ingest.receive(sms).outcome)
        return outcomes

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = [o for result in pool.map(writer, range(THREADS)) for o in result]
    # A coordinator's report against a station's volunteer agreement is stored but held for
    # review (``overridden``, outcome ``flagged``): the counters must stay exact through those too.
    assert outcomes.count("accepted") + outcomes.count("flagged") == THREADS * MESSAGES, sorted(set(outcomes))
    with database.read() as session:
        recount.snapshot(session)
        assert session.scalar(select(func.count(Report.id))) == THREADS * MESSAGES
        assert recount.verify(session) == []
        for code in (None, "63", "63.71", "63.71.01", MANTUIL, KURIPAN):
            document, expected = tally(session, code), recount.recompute(session, code)
            assert document["stations"]["reported"] == expected.get("reported", 0)
            assert document["votes"] == {c: expected.get(f"v:{c}", 0) for c in ("01", "02", "03")}
            assert document["valid"] == expected.get("valid", 0)
            assert document["invalid"] == expected.get("invalid", 0)
        assert recount.recompute(session, MANTUIL)["reported"] == len(MANTUIL_STATIONS)


def test_a_result_loaded_earlier_in_the_transaction_does_not_skew_the_counters(
    world, database, settings
) -> None:  # type: ignore[no-untyped-def]
    """A session that read the station's result before another writer committed must not
    compute its counter delta from the stale copy (station_results.lock reloads it)."""
    station = "6371011001012"
    ingest = Ingest(database, settings)
    with database.begin() as session:
        stale = session.get(StationResult, station)
        assert stale is not None and stale.status == "missing"
        # Meanwhile another volunteer's report for the same station commits.
        reply = ingest.receive(InboundSMS("test", "other-1", VOLUNTEER_A, "TPS 012 01=1 02=2 03=3"))
        assert reply.outcome == "accepted"
        contact = session.scalars(select(Contact).where(Contact.phone == VOLUNTEER_B)).one()
        inbound = InboundMessage(
            provider="test",
            provider_message_id="mine-1",
            from_number=VOLUNTEER_B,
            to_number="",
            body="TPS 012 01=1 02=2 03=3",
            received_at=utcnow(),
            outcome="accepted",
        )
        session.add(inbound)
        session.flush()
        parsed = grammar.parse(inbound.body, candidates=("01", "02", "03"))
        assert isinstance(parsed, grammar.Report)
        stored = reports.store(
            session,
            contact=contact,
            station=session.get(Station, station),
            parsed=parsed,
            inbound=inbound,
            now=utcnow(),
        )
        assert stored.result.status == "verified"
    with database.read() as session:
        assert recount.verify(session) == []
        assert tally(session, MANTUIL)["stations"]["reported"] == 1
